// The budget banner (80% and 95% of a budget spent) is asked for again after each answer, as each one spends.
(function () {
  "use strict";
  const banner = document.getElementById("budget-banner");
  if (!banner) return;
  const ENDED = new Set(["done", "truncated", "failed", "queued"]);
  document.addEventListener("chat:event", async (event) => {
    if (!ENDED.has(event.detail.name)) return;
    try {
      const response = await fetch(banner.dataset.url, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("budget-banner");
      if (fresh) document.getElementById("budget-banner").replaceWith(document.importNode(fresh, true));
    } catch (error) { /* advice only: the next answer asks again */ }
  });
})();
