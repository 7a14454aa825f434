// outputd's board: times in the browser's own zone (UTC on hover), and the page's live
// part asked for again each second while the page is open (304 while nothing changed).
"use strict";

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (isNaN(at)) continue;
    el.textContent = at.toLocaleString([], {year: "numeric", month: "2-digit", day: "2-digit",
                                            hour: "2-digit", minute: "2-digit"});
    el.title = el.getAttribute("datetime").replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC");
  }
}

function follow(region) {
  const url = region.dataset.live;
  let etag = region.dataset.etag || null;
  let busy = false;
  async function tick() {
    if (busy || document.hidden) return;
    if (region.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    busy = true;
    try {
      const headers = etag ? {"If-None-Match": etag} : {};
      const answer = await fetch(url, {headers, credentials: "same-origin", cache: "no-store"});
      if (answer.status === 200) {
        etag = answer.headers.get("ETag");
        const html = await answer.text();
        if (etag !== null && region.dataset.etag !== etag) {
          region.innerHTML = html;
          region.dataset.etag = etag;
          localTimes(region);
        }
      } else if (answer.status === 401 || answer.redirected) {
        window.location.reload();
      }
    } catch (e) {
      // the server is away for a moment: try again at the next tick
    } finally {
      busy = false;
    }
  }
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const region = document.getElementById("live");
  if (region && region.dataset.live) follow(region);
});
