// relata: older timeline events are appended in place; without JavaScript the link pages.
"use strict";

// Requests that change something carry the session's CSRF token (auth/gate.py refuses them
// without it); the page has it in <meta name="csrf-token">. Use it for every fetch.
function relataFetch(url, options = {}) {
  const token = document.querySelector('meta[name="csrf-token"]')?.content;
  const headers = new Headers(options.headers || {});
  if (token) headers.set("X-CSRF-Token", token);
  return fetch(url, { ...options, headers, credentials: "same-origin" });
}

document.addEventListener("click", async (event) => {
  const link = event.target.closest("a[data-fragment]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  const list = document.getElementById("timeline-list");
  const nav = document.getElementById("timeline-more");
  try {
    const response = await relataFetch(link.dataset.fragment, { headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(String(response.status));
    const fragment = document.createElement("template");
    fragment.innerHTML = await response.text();
    const items = [...fragment.content.querySelectorAll("#timeline-list > li")];
    list.append(...items);
    nav.replaceWith(fragment.content.getElementById("timeline-more"));
    if (items.length) {
      items[0].tabIndex = -1;
      items[0].focus();
    }
  } catch {
    window.location.href = link.href;
  }
});
