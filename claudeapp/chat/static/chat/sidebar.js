// A conversation started on this page shows in the sidebar at once (no reload), titled by the server
// as soon as its first turn is saved.
(function () {
  "use strict";
  const list = document.querySelector(".conversation-list");
  if (!list) return;
  let item = null;

  document.addEventListener("chat:conversation", (event) => {
    const url = event.detail.url;
    if (!url || list.querySelector('a[href="' + url + '"]')) return;
    list.querySelector("li.muted")?.remove();  // "No conversations yet."
    list.querySelectorAll("li.active").forEach((li) => li.classList.remove("active"));
    item = document.createElement("li");
    item.className = "active";
    const link = document.createElement("a");
    link.href = url;
    link.textContent = "New chat";
    link.setAttribute("aria-current", "page");
    item.append(link);
    list.prepend(item);
  });

  document.addEventListener("chat:event", (event) => {
    const title = event.detail.data && event.detail.data.title;
    const link = (item || list.querySelector("li.active"))?.querySelector("a");
    if (title && link) {
      link.textContent = title;
      document.title = title + " · Claude gateway";
    }
  });
})();
