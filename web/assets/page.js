// nsfd's status page: refreshes #live from the server every few seconds
// and follows a daemon's log through server-sent events. The page reads
// without it.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (live && live.dataset.refresh) {
    const every = Number(live.dataset.refresh) * 1000;
    const refresh = async () => {
      try {
        const u = new URL(location.href);
        u.searchParams.set("part", "live");
        const r = await fetch(u, { credentials: "same-origin" });
        if (r.ok) live.innerHTML = await r.text();
      } catch (e) { /* the next refresh tries again */ }
      setTimeout(refresh, every);
    };
    setTimeout(refresh, every);
  }
  const log = document.getElementById("log");
  if (log && log.dataset.follow && window.EventSource) {
    const keep = 500;
    const es = new EventSource(log.dataset.follow);
    // The stream starts over with the last lines: what the server rendered
    // is replaced, so no line is shown twice or missed.
    es.addEventListener("reset", () => { log.textContent = ""; });
    es.onmessage = (ev) => {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(document.createTextNode(ev.data + "\n"));
      while (log.childNodes.length > keep) log.removeChild(log.firstChild);
      if (atEnd) log.scrollTop = log.scrollHeight;
    };
  }
})();
