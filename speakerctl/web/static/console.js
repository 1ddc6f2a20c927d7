// Live updates: one EventSource per page; each `patch` event carries the changed parts (elements with
// an id), which replace the elements of the same id. htmx then wires any hx-* attributes in them.
"use strict";
(function () {
  const url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("patch", (e) => {
    const box = document.createElement("template");
    box.innerHTML = e.data;
    for (const fresh of Array.from(box.content.children)) {
      const old = fresh.id && document.getElementById(fresh.id);
      if (!old) continue;
      old.replaceWith(fresh);
      if (window.htmx) window.htmx.process(fresh);
      document.dispatchEvent(new CustomEvent("console:patched", { detail: fresh }));
    }
  });
  source.addEventListener("signed-out", (e) => { source.close(); window.location.assign(e.data); });
  document.body.dataset.liveState = "connecting";
  source.addEventListener("open", () => { document.body.dataset.liveState = "open"; });
  source.addEventListener("error", () => { document.body.dataset.liveState = "retrying"; });
  window.addEventListener("pagehide", () => source.close());
})();
