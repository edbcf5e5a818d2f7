// Attachments in the composer: the "Attach files" button, files dropped on the chat, images pasted
// into the message box. Each file is checked here first (kind, size, count, a PDF's pages) and refused
// with a message before any byte is uploaded; then it uploads at once, so the estimate can count it.
// The server checks everything again (413/400 naming the field). chat.js asks `window.chatAttachments`
// for the ids to send, and clears it once sent.
(function () {
  "use strict";
  const box = document.getElementById("composer-files");
  if (!box) return;
  const input = document.getElementById("file-input");
  const chips = document.getElementById("attachment-chips");
  const chat = document.getElementById("chat");
  const prompt = document.getElementById("prompt");
  const hint = document.getElementById("hint");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const maxBytes = Number(box.dataset.maxBytes);
  const maxCount = Number(box.dataset.maxCount);
  const maxPages = Number(box.dataset.maxPages);
  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
  const TEXT_EXTENSIONS = new Set(input.accept.split(",").filter((a) => a.startsWith(".")).map((a) => a.slice(1)));
  const items = [];  // {id, file, chip, ready}

  document.getElementById("attach-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
  prompt.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) { event.preventDefault(); addFiles(files); }
  });
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  chat.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    chat.classList.add("dropping");
  });
  chat.addEventListener("dragleave", (event) => {
    if (!chat.contains(event.relatedTarget)) chat.classList.remove("dropping");
  });
  chat.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    chat.classList.remove("dropping");
    addFiles([...event.dataTransfer.files]);
  });

  function extension(name) {
    const base = name.toLowerCase();
    return base.includes(".") ? base.split(".").pop() : base;
  }

  function kindOf(file) {
    if (IMAGE_TYPES.includes(file.type)) return "image";
    if (file.type === "application/pdf" || extension(file.name) === "pdf") return "document";
    if (TEXT_EXTENSIONS.has(extension(file.name)) || file.type.startsWith("text/") || !file.name.includes(".")) return "text";
    return null;
  }

  // Page objects in the parts of the file that are not compressed; the server also reads compressed ones.
  async function pdfPages(file) {
    const text = new TextDecoder("latin1").decode(await file.arrayBuffer());
    return (text.match(/\/Type\s*\/Page(?![a-zA-Z])/g) || []).length;
  }

  async function problem(file) {
    const kind = kindOf(file);
    if (!kind) return file.name + ": attach images (PNG, JPEG, GIF, WebP), PDFs or text files (txt, md, csv, json, source code).";
    if (file.size > maxBytes) return file.name + " is " + size(file.size) + "; files are limited to " + box.dataset.maxSize + ".";
    if (file.size === 0) return file.name + " is empty.";
    if (kind === "document") {
      const pages = await pdfPages(file);
      if (pages > maxPages) return file.name + " has " + pages + " pages; PDFs are limited to " + maxPages + ".";
    }
    return null;
  }

  async function addFiles(files) {
    for (const file of files) {
      if (items.length >= maxCount) { say("At most " + maxCount + " files per message."); return; }
      const reason = await problem(file);
      if (reason) say(reason); else upload(file);
    }
  }

  function upload(file) {
    const item = { id: null, file, chip: chip(file) };
    items.push(item);
    const body = new FormData();
    body.append("file", file);
    item.ready = fetch(box.dataset.uploadUrl, { method: "POST", headers: { "X-CSRFToken": csrf, Accept: "application/json" }, body })
      .then(async (response) => {
        const data = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(data.error?.message || "Upload failed (" + response.status + ").");
        item.id = data.id;
        item.chip.classList.remove("uploading");
        item.chip.querySelector(".detail").textContent = detail(data);
        changed();
      })
      .catch((error) => { drop(item); say(error.message); });
  }

  function chip(file) {
    const li = document.createElement("li");
    li.className = "attachment-chip uploading kind-" + kindOf(file);
    if (kindOf(file) === "image") {
      const img = document.createElement("img");
      img.alt = "";
      const reader = new FileReader();  // a data: URL (the CSP allows those for images, not blob:)
      reader.addEventListener("load", () => { img.src = reader.result; });
      reader.readAsDataURL(file);
      li.append(img);
    }
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const info = document.createElement("span");
    info.className = "detail muted";
    info.textContent = size(file.size) + " · uploading…";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", "Remove " + file.name);
    remove.addEventListener("click", () => {
      const item = items.find((i) => i.chip === li);
      if (item?.id) fetch(box.dataset.uploadUrl + item.id + "/discard", { method: "POST", headers: { "X-CSRFToken": csrf } });
      if (item) drop(item);
    });
    li.append(name, info, remove);
    chips.append(li);
    return li;
  }

  function detail(data) {
    const parts = [size(data.size_bytes)];
    if (data.pages) parts.push(data.pages + (data.pages === 1 ? " page" : " pages"));
    parts.push("≈" + data.tokens_estimate.toLocaleString() + " tokens");
    return parts.join(" · ");
  }

  function drop(item) {
    const at = items.indexOf(item);
    if (at >= 0) items.splice(at, 1);
    item.chip.remove();
    changed();
  }

  function changed() { document.dispatchEvent(new CustomEvent("attachments:change")); }

  function say(message) {
    hint.textContent = message;
    hint.classList.add("error");
  }

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  window.chatAttachments = {
    // Uploads still under way finish (or fail) before a message is sent.
    ready: () => Promise.allSettled(items.map((i) => i.ready)),
    ids: () => items.filter((i) => i.id).map((i) => i.id).join(","),
    // The sent message shows its files at once (the server renders them for good on the next load).
    preview() {
      const sent = items.filter((i) => i.id);
      if (!sent.length) return null;
      const list = document.createElement("ul");
      list.className = "attachments";
      for (const item of sent) {
        const li = document.createElement("li");
        li.className = "attachment kind-" + kindOf(item.file);
        const img = item.chip.querySelector("img");
        if (img) li.append(img.cloneNode());
        else li.textContent = item.file.name;
        list.append(li);
      }
      return list;
    },
    clear() {
      for (const item of items.splice(0)) item.chip.remove();
      changed();
    },
  };
})();
