// The fleet page refreshes itself: a small GET of the table every few seconds, answered 304
// while nothing changed. No library, no build step.
(function () {
  var live = document.getElementById("live");
  var stamp = document.getElementById("updated");
  if (!live) return;
  var etag = null, every = +live.dataset.pollMs || 3000, lastOk = new Date();
  function tick() {
    var h = etag ? {"If-None-Match": etag} : {};
    fetch(live.dataset.src, {headers: h, credentials: "same-origin", cache: "no-cache"})
      .then(function (r) {
        if (r.status === 401 || r.redirected) { location.reload(); return; }
        if (r.status === 304) { lastOk = new Date(); stamp.textContent = ""; return; }
        if (!r.ok) throw new Error(r.status);
        etag = r.headers.get("ETag");
        return r.text().then(function (html) { live.innerHTML = html; lastOk = new Date(); stamp.textContent = ""; });
      })
      .catch(function () { stamp.textContent = stamp.dataset.stale.replace("{t}", lastOk.toLocaleTimeString()); })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
