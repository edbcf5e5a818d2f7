// Chat page: send a message, read the answer as server-sent events, render it.
// Text arrives as plain text while streaming; the server sends the final
// sanitised HTML at the end, so no Markdown or HTML from the model is ever
// interpreted in the browser.
(function () {
  "use strict";
  // Forms that ask first (e.g. Delete): the question is in data-confirm, as the CSP allows no inline handlers.
  document.querySelectorAll("form[data-confirm]").forEach((confirmed) => {
    confirmed.addEventListener("submit", (event) => {
      if (!window.confirm(confirmed.dataset.confirm)) event.preventDefault();
    });
  });
  const chat = document.getElementById("chat");
  const form = document.getElementById("composer");
  if (!chat || !form) return;
  const prompt = document.getElementById("prompt");
  const model = document.getElementById("model");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const hint = document.getElementById("hint");
  const messages = document.getElementById("messages");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let controller = null;

  document.getElementById("toggle-sidebar")?.addEventListener("click", () => {
    document.getElementById("sidebar").classList.toggle("open");
  });

  // Warn before sending when this turn's worst case (the budget hold billing would take) is more
  // than the budget left. The server computes it, with the same prices and rule as the hold.
  let estimateTimer = null;
  function scheduleEstimate() {
    clearTimeout(estimateTimer);
    estimateTimer = setTimeout(checkBudget, 400);
  }
  async function checkBudget() {
    const url = chat.dataset.estimateUrl;
    if (!url || controller) return;
    const params = new URLSearchParams({ model: model.value, chars: String(prompt.value.length) });
    if (window.chatAttachments) params.set("attachments", window.chatAttachments.ids());
    try {
      const response = await fetch(url + "?" + params, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      const estimate = document.getElementById("estimate");  // tokens and worst case, always shown (attachments.js)
      if (estimate) estimate.textContent = "≈" + data.input_tokens.toLocaleString() + " tokens in · up to " + data.worst_case;
      const warning = data.over_budget
        ? "This message could cost up to " + data.worst_case + ", more than the " + data.budget_left + " left in your budget."
        : "";
      showHint(warning);
      hint.classList.toggle("error", data.over_budget);
    } catch (error) { /* the estimate is advice only */ }
  }
  prompt.addEventListener("input", scheduleEstimate);
  model.addEventListener("change", scheduleEstimate);
  document.addEventListener("attachments:change", scheduleEstimate);
  if (chat.dataset.estimateUrl) scheduleEstimate();

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    let sendUrl = chat.dataset.sendUrl;
    if (!sendUrl) sendUrl = await createConversation();
    if (!sendUrl) return;
    await window.chatAttachments?.ready();  // files still uploading go with this message
    prompt.value = "";
    const attachments = window.chatAttachments?.ids() || "";
    await send(sendUrl, { content: text, model: model.value, attachments, background: document.getElementById("background")?.checked ? "1" : "", think: document.getElementById("think")?.checked ? "1" : "" }, text);
  });

  messages.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-retry]");
    if (!button || controller) return;
    const article = button.closest("article");
    await send(chat.dataset.sendUrl, { retry: button.dataset.retry, model: model.value }, null, article);
  });

  stopButton.addEventListener("click", () => controller && controller.abort());
  // For branches.js (edit, regenerate) and shortcuts.js: send with other fields, and ask if a stream is open.
  window.claudeChat = { send: (fields, userText, replaceArticle) => send(chat.dataset.sendUrl, fields, userText, replaceArticle), busy: () => controller !== null };

  async function createConversation() {
    const response = await fetch(form.getAttribute("action"), {
      method: "POST",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      body: new URLSearchParams({ model: model.value }),
    });
    if (!response.ok) { showHint("Could not start a conversation (" + response.status + ")."); return null; }
    const data = await response.json();
    chat.dataset.sendUrl = data.send_url;
    chat.dataset.estimateUrl = data.estimate_url;
    history.replaceState(null, "", data.url);
    document.dispatchEvent(new CustomEvent("chat:conversation", { detail: data }));  // sidebar.js lists it
    return data.send_url;
  }

  async function send(url, fields, userText, replaceArticle) {
    document.getElementById("empty-state")?.remove();
    if (userText !== null) messages.append(userBubble(userText));
    if (userText !== null && fields.attachments) {
      const files = window.chatAttachments.preview();
      if (files) messages.lastElementChild.prepend(files);
      window.chatAttachments.clear();
    }
    const answer = assistantBubble();
    if (replaceArticle) replaceArticle.replaceWith(answer); else messages.append(answer);
    scrollDown();
    controller = new AbortController();
    setBusy(true);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "X-CSRFToken": csrf, Accept: "text/event-stream" },
        body: new URLSearchParams(fields),
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        const body = await response.json().catch(() => ({}));
        finish(answer, { kind: "error", message: body.error?.message || "Request failed (" + response.status + ")." });
        return;
      }
      await readEvents(response.body, (name, data) => handleEvent(answer, name, data));
    } catch (error) {
      if (error.name === "AbortError") finish(answer, { kind: "stopped", message: "Stopped." });
      else finish(answer, { kind: "error", message: "Connection lost: " + error.message });
    } finally {
      controller = null;
      setBusy(false);
    }
  }

  function handleEvent(answer, name, data) {
    const text = answer.querySelector(".streaming-text");
    if (name === "delta") { text.textContent += data.text; scrollDown(); }
    else if (name === "start") { answer.dataset.id = data.message_id; meta(answer, [["model", data.model]]); }
    else if (name === "done" || name === "truncated" || name === "failed" || name === "queued") {
      if (data.html) answer.outerHTML = data.html; else finish(answer, { kind: "error", message: data.message });
      if (name === "queued") watchQueued();
    }
    // branches.js, sidebar.js and budget.js follow the stream from here (no inline hooks under the CSP).
    document.dispatchEvent(new CustomEvent("chat:event", { detail: { name, data } }));
  }

  // A queued answer is written by a background job later: ask the server about it every
  // couple of seconds and swap in the finished message when its job has ended.
  let queuedTimer = null;
  function watchQueued() {
    if (queuedTimer === null && messages.querySelector("article.status-queued[data-id]")) {
      queuedTimer = setTimeout(checkQueued, 2000);
    }
  }

  async function checkQueued() {
    const base = (chat.dataset.sendUrl || "").replace(/send$/, "");
    for (const article of messages.querySelectorAll("article.status-queued[data-id]")) {
      if (!base) break;
      try {
        const response = await fetch(base + "m/" + article.dataset.id + "/", { headers: { Accept: "application/json" }, cache: "no-store" });
        if (!response.ok || response.redirected) continue;
        const data = await response.json();
        if (data.status !== "queued" && data.html) article.outerHTML = data.html;
      } catch (error) { /* offline for a moment: try again next round */ }
    }
    queuedTimer = null;
    watchQueued();
  scrollDown();  // open a conversation at its latest message, as chat apps do
  }
  watchQueued();

  async function readEvents(stream, onEvent) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message", data = "";
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) onEvent(name, JSON.parse(data));
      }
    }
  }

  function userBubble(text) {
    const article = document.createElement("article");
    article.className = "message user";
    const p = document.createElement("p");
    p.className = "plain";
    p.textContent = text;
    article.append(p);
    return article;
  }

  function assistantBubble() {
    const article = document.createElement("article");
    article.className = "message assistant status-streaming";
    const body = document.createElement("div");
    body.className = "body";
    const text = document.createElement("div");
    text.className = "streaming-text";
    body.append(text);
    const footer = document.createElement("footer");
    footer.className = "meta";
    article.append(body, footer);
    return article;
  }

  function meta(article, pairs) {
    const footer = article.querySelector(".meta");
    for (const [cls, value] of pairs) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = value;
      footer.append(span);
    }
  }

  function finish(article, { kind, message }) {
    article.classList.remove("status-streaming");
    article.classList.add(kind === "stopped" ? "status-truncated" : "status-failed");
    meta(article, [[kind === "stopped" ? "notice" : "error", message]]);
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    stopButton.hidden = !busy;
    if (busy) showHint("");
  }

  function showHint(text) { hint.textContent = text; }
  function scrollDown() { messages.scrollTop = messages.scrollHeight; }
})();
