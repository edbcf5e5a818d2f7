// Keyboard shortcuts, listed in a dialog on "?". Single keys act only outside text fields.
(function () {
  "use strict";
  const mod = /Mac|iPhone|iPad/.test(navigator.platform) ? "⌘" : "Ctrl";
  const SHORTCUTS = [
    ["?", "Show this list", null],
    [mod + " + Shift + O", "New chat", newChat],
    ["Shift + Esc or /", "Focus the message box", focusComposer],
    ["Esc", "Stop the answer being written", stop],
    [mod + " + K", "Search conversations", focusSearch],
    ["Enter", "Send (in the message box)", null],
    ["Shift + Enter", "New line (in the message box)", null],
  ];
  let dialog = null;

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    const key = event.key;
    const withMod = event.ctrlKey || event.metaKey;
    if (withMod && event.shiftKey && key.toLowerCase() === "o") return act(event, newChat);
    if (withMod && !event.shiftKey && key.toLowerCase() === "k") return act(event, focusSearch);
    if (key === "Escape" && event.shiftKey) return act(event, focusComposer);
    if (key === "Escape" && !document.querySelector("dialog[open]") && stop()) return event.preventDefault();
    if (typing(event.target) || withMod || event.altKey) return;
    if (key === "?") return act(event, toggleList);
    if (key === "/") return act(event, focusComposer);
  });

  function act(event, action) {
    event.preventDefault();
    action();
  }

  function newChat() {
    const form = document.querySelector('form[action$="/c/new"]:not(#composer)');
    if (form) form.requestSubmit(); else window.location.assign("/");
  }

  function focusComposer() {
    document.getElementById("prompt")?.focus();
  }

  function stop() {
    const button = document.getElementById("stop");
    if (!button || button.hidden) return false;
    button.click();
    return true;
  }

  function focusSearch() {
    const search = document.querySelector('#sidebar input[type="search"]');
    if (search) search.focus(); else window.location.assign("/search/");
  }

  function toggleList() {
    if (dialog && dialog.open) return dialog.close();
    if (!dialog) dialog = build();
    dialog.showModal();
  }

  function build() {
    const box = document.createElement("dialog");
    box.id = "shortcuts";
    box.className = "shortcuts-dialog";
    box.setAttribute("aria-labelledby", "shortcuts-title");
    const title = document.createElement("h2");
    title.id = "shortcuts-title";
    title.textContent = "Keyboard shortcuts";
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const name of ["Keys", "Does"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      head.append(th);
    }
    const body = table.createTBody();
    for (const [keys, what] of SHORTCUTS) {
      const row = body.insertRow();
      const kbd = document.createElement("kbd");
      kbd.textContent = keys;
      row.insertCell().append(kbd);
      row.insertCell().textContent = what;
    }
    const form = document.createElement("form");
    form.method = "dialog";
    const close = document.createElement("button");
    close.textContent = "Close";
    form.append(close);
    box.append(title, table, form);
    document.body.append(box);
    return box;
  }

  // A visible way in for those who do not know about "?".
  const footer = document.querySelector(".sidebar-footer");
  if (footer) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.id = "show-shortcuts";
    button.textContent = "Shortcuts (?)";
    button.addEventListener("click", toggleList);
    footer.append(button);
  }
})();
