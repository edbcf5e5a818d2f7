// Copy buttons: one on each code block of an answer, and "Copy" under each answer (its text as shown).
// The code button's label comes from CSS (::after), so it never ends up in the text it copies.
(function () {
  "use strict";
  const messages = document.getElementById("messages");
  if (!messages) return;

  function decorate() {
    for (const pre of messages.querySelectorAll("article.message.assistant .body pre")) {
      if (pre.previousElementSibling && pre.previousElementSibling.classList.contains("copy-code")) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code";
      button.setAttribute("aria-label", "Copy code");
      pre.before(button);
    }
  }

  async function copy(button, text) {
    try {
      await navigator.clipboard.writeText(text);
      flash(button, "copied");
    } catch (error) {
      flash(button, "copy-failed");
    }
  }

  // The code button speaks through aria-label (its visible label is CSS); the answer's through its text.
  function flash(button, state) {
    const useLabel = button.classList.contains("copy-code");
    const before = useLabel ? button.getAttribute("aria-label") : button.textContent;
    const now = state === "copied" ? "Copied" : "Copy failed";
    if (useLabel) button.setAttribute("aria-label", now); else button.textContent = now;
    button.classList.add(state);
    setTimeout(() => {
      button.classList.remove(state);
      if (useLabel) button.setAttribute("aria-label", before); else button.textContent = before;
    }, 1500);
  }

  messages.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("copy-code")) {
      copy(button, button.nextElementSibling.innerText.replace(/\n$/, ""));
    } else if (button.hasAttribute("data-copy-answer")) {
      const body = button.closest("article").querySelector(".body");
      copy(button, body.innerText.trim());
    }
  });

  decorate();
  new MutationObserver(decorate).observe(messages, { childList: true, subtree: true });
})();
