// Instructions (a conversation's system prompt, and the default on the settings page): the token
// count follows the text as it is typed, counted as the budget hold counts text (UTF-8 bytes / 3,
// rounded up), and a conversation's instructions save without leaving the page.
(function () {
  "use strict";
  const encoder = new TextEncoder();
  const tokens = (text) => (text.trim() ? Math.ceil(encoder.encode(text.trim()).length / 3) : 0);

  document.querySelectorAll("textarea[data-token-count]").forEach((area) => {
    const out = document.getElementById(area.dataset.tokenCount);
    const show = () => {
      const n = tokens(area.value);
      out.textContent = n.toLocaleString() + (n === 1 ? " token" : " tokens");
    };
    area.addEventListener("input", show);
  });

  const form = document.getElementById("instructions-form");
  if (!form) return;
  const status = document.getElementById("instructions-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
        body: new FormData(form),
      });
      const data = await response.json();
      if (!response.ok) { status.textContent = data.error?.message || "Could not save."; return; }
      status.textContent = "Saved · " + data.tokens.toLocaleString() + (data.tokens === 1 ? " token" : " tokens");
      form.closest("details").querySelector("summary").textContent = data.system_prompt ? "Instructions ✓" : "Instructions";
      document.dispatchEvent(new CustomEvent("attachments:change"));  // the estimate includes them
    } catch (error) {
      status.textContent = "Could not save: " + error.message;
    }
  });
})();
