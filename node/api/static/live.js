// Refreshes the page's live region after each committed transaction this reader may see.
(function () {
  "use strict";
  if (!window.EventSource || !document.querySelector("[data-live]")) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        var current = document.querySelector("[data-live]");
        if (fresh && current) current.replaceWith(fresh);
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var source = new EventSource("/v1/stream");
  source.addEventListener("tx", refresh);
  source.addEventListener("open", function () { document.body.setAttribute("data-stream", "open"); });
})();
