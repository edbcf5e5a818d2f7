// Jobs page: poll the live endpoint and swap in the server-rendered rows when they change.
// Every 2 s while a job is queued or running, every 10 s when all are finished (a new one
// may start from another tab), and not at all while the tab is hidden.
(function () {
  "use strict";
  const page = document.getElementById("jobs-page");
  if (!page) return;
  const rows = document.getElementById("jobs-rows");
  const status = document.getElementById("live-status");
  const FAST = 2000, SLOW = 10000;
  let lastHtml = null, timer = null;

  async function poll() {
    timer = null;
    let active = true;
    try {
      const response = await fetch(page.dataset.liveUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.status === 401 || response.status === 403 || response.redirected) { status.textContent = "Signed out: reload to sign in."; return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      if (data.html !== lastHtml) { rows.innerHTML = data.html; lastHtml = data.html; }
      active = data.active;
      status.textContent = "Live · updated " + new Date().toLocaleTimeString();
    } catch (error) {
      status.textContent = "Reconnecting…";
    }
    schedule(active ? FAST : SLOW);
  }

  function schedule(delay) {
    if (timer === null && !document.hidden) timer = setTimeout(poll, delay);
  }

  document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule(0); });
  schedule(FAST);
})();
