// Edit a question, regenerate an answer (same or another model) and switch between the versions of a
// message ("< 2/3 >"). Every version is kept on the server; the page shows one branch, and after a
// change it swaps in the server's rendering of that branch (sanitised HTML, as chat.js does).
(function () {
  "use strict";
  const chat = document.getElementById("chat");
  const messages = document.getElementById("messages");
  const model = document.getElementById("model");
  if (!chat || !messages || !model) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const base = () => (chat.dataset.sendUrl || "").replace(/send$/, "");
  const busy = () => !window.claudeChat || window.claudeChat.busy();

  // A question sent from this page gets its id, and so its Edit button, once the server has saved it.
  document.addEventListener("chat:event", (event) => {
    const questionId = event.detail.data && event.detail.data.question_id;
    if (!questionId || messages.querySelector('article[data-id="' + questionId + '"]')) return;
    const bubbles = messages.querySelectorAll("article.message.user:not([data-id])");
    const bubble = bubbles[bubbles.length - 1];
    if (!bubble) return;
    bubble.dataset.id = questionId;
    const actions = document.createElement("div");
    actions.className = "message-actions";
    actions.append(linkButton("Edit", "edit", { edit: questionId }));
    bubble.append(actions);
  });

  messages.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target || !messages.contains(target)) return;
    const article = target.closest("article.message");
    if (target.dataset.edit) openEditor(article, target.dataset.edit);
    else if (target.dataset.regenerate) regenerate(article, target.dataset.regenerate, target.dataset.model || model.value);
    else if (target.dataset.regenerateWith) chooseModel(article, target.dataset.regenerateWith, target.dataset.model);
    else if (target.dataset.branch) switchTo(target.dataset.branch);
  });

  function openEditor(article, messageId) {
    if (article.querySelector("form.edit-form")) return;
    const plain = article.querySelector(".plain");
    const form = document.createElement("form");
    form.className = "edit-form";
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = "edit-" + messageId;
    label.textContent = "Edit your message";
    const box = document.createElement("textarea");
    box.id = "edit-" + messageId;
    box.rows = 3;
    box.value = plain ? plain.innerText : "";
    const bar = document.createElement("div");
    bar.className = "edit-bar";
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary";
    save.textContent = "Save and send";
    const cancel = linkButton("Cancel", "secondary", {});
    bar.append(save, cancel);
    form.append(label, box, bar);
    article.classList.add("editing");
    article.append(form);
    box.focus();
    cancel.addEventListener("click", () => { form.remove(); article.classList.remove("editing"); });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
      if (event.key === "Escape") { event.stopPropagation(); cancel.click(); }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = box.value.trim();
      if (!text || busy()) return;
      dropAfter(article);
      article.remove();
      await window.claudeChat.send({ content: text, edit_of: messageId, model: model.value }, text);
      await refresh();
    });
  }

  async function regenerate(article, messageId, modelValue) {
    if (busy()) return;
    dropAfter(article);
    await window.claudeChat.send({ regenerate: messageId, model: modelValue }, null, article);
    await refresh();
  }

  // "Regenerate with…": the models of the composer's picker, the answer's own model preselected.
  function chooseModel(article, messageId, current) {
    const dialog = document.createElement("dialog");
    dialog.className = "regenerate-dialog";
    dialog.setAttribute("aria-labelledby", "regenerate-title");
    const form = document.createElement("form");
    form.method = "dialog";
    const title = document.createElement("h2");
    title.id = "regenerate-title";
    title.textContent = "Regenerate with";
    const label = document.createElement("label");
    label.textContent = "Model ";
    const select = model.cloneNode(true);
    select.id = "regenerate-model";
    select.name = "regenerate-model";
    select.value = [...select.options].some((o) => o.value === current) ? current : model.value;
    label.append(select);
    const bar = document.createElement("div");
    bar.className = "edit-bar";
    const go = document.createElement("button");
    go.className = "primary";
    go.value = "go";
    go.textContent = "Regenerate";
    const cancel = document.createElement("button");
    cancel.value = "cancel";
    cancel.className = "secondary";
    cancel.textContent = "Cancel";
    bar.append(go, cancel);
    form.append(title, label, bar);
    dialog.append(form);
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const chosen = dialog.returnValue === "go" ? select.value : null;
      dialog.remove();
      if (chosen) regenerate(article, messageId, chosen);
    });
    dialog.showModal();
    select.focus();
  }

  async function switchTo(messageId) {
    if (busy()) return;
    const response = await fetch(base() + "branch", {
      method: "POST",
      headers: { "X-CSRFToken": csrf, Accept: "text/html" },
      body: new URLSearchParams({ message: messageId }),
    });
    if (response.ok) show(await response.text(), messageId);
  }

  async function refresh() {
    const response = await fetch(base() + "thread", { headers: { Accept: "text/html" }, cache: "no-store" });
    if (response.ok) show(await response.text(), null);
  }

  function show(html, focusId) {
    messages.innerHTML = html;  // the server's rendering: Markdown sanitised there, never in the browser
    const article = focusId && messages.querySelector('article[data-id="' + focusId + '"]');
    if (article) article.querySelector(".branches button:not([disabled])")?.focus();
    messages.dispatchEvent(new CustomEvent("chat:thread", { bubbles: true }));
  }

  function dropAfter(article) {
    while (article.nextElementSibling) article.nextElementSibling.remove();
  }

  function linkButton(text, className, data) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link " + className;
    button.textContent = text;
    for (const [key, value] of Object.entries(data)) button.dataset[key] = value;
    return button;
  }
})();
