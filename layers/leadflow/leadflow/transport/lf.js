/* leadflow tracking snippet: <script src="https://<api>/t/lf.js" async></script>
 * Keeps a first-party anonymous visitor id (cookie lf_vid on your site), sends page views with
 * time on page, downloads and HTML5 video progress to /t/e, and adds the visitor id to every form
 * so that a form submission ties the visitor's earlier visits to the lead. No third-party cookie,
 * no fingerprinting; sendBeacon with text/plain bodies needs no CORS preflight. */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = new URL("/t/e", script ? script.src : window.location.href).href;
  var match = document.cookie.match(/(?:^|; )lf_vid=([A-Za-z0-9_-]{8,64})/);
  var vid = match ? match[1] : (Date.now().toString(36) + Math.random().toString(36).slice(2, 12));
  document.cookie = "lf_vid=" + vid + "; path=/; max-age=" + 60 * 60 * 24 * 395 + "; SameSite=Lax";
  var started = Date.now();

  function send(event) {
    event.visitor_id = vid;
    event.url = event.url || window.location.href;
    var body = JSON.stringify(event);
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) { return; }
    fetch(endpoint, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
  }

  send({ type: "page_view", title: document.title, referrer: document.referrer || undefined });
  var reported = false;
  function leave() {
    if (reported) { return; }
    reported = true;
    send({ type: "page_view", title: document.title, seconds: Math.round((Date.now() - started) / 1000) });
  }
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") { leave(); } });
  window.addEventListener("pagehide", leave);

  document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest ? e.target.closest("a[href]") : null;
    if (link && /\.(pdf|zip|docx?|xlsx?|pptx?|csv|epub)(\?|#|$)/i.test(link.href)) {
      send({ type: "download", url: link.href, asset: link.getAttribute("download") || undefined });
    }
  }, true);

  function watch(video) {
    var sent = {};
    video.addEventListener("timeupdate", function () {
      if (!video.duration) { return; }
      var percent = (video.currentTime / video.duration) * 100;
      [25, 50, 75, 100].forEach(function (mark) {
        if (percent >= (mark === 100 ? 99 : mark) && !sent[mark]) {
          sent[mark] = true;
          send({ type: "video_progress", percent: mark, asset: video.currentSrc || video.getAttribute("data-name") || undefined });
        }
      });
    });
  }
  function tagForms() {
    Array.prototype.forEach.call(document.forms, function (form) {
      if (!form.querySelector('input[name="_lf_vid"]')) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "_lf_vid"; input.value = vid;
        form.appendChild(input);
      }
    });
    Array.prototype.forEach.call(document.querySelectorAll("video"), function (video) {
      if (!video.dataset.lfWatched) { video.dataset.lfWatched = "1"; watch(video); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", tagForms); } else { tagForms(); }
  window.leadflow = { visitorId: vid, track: function (name, data) { var e = data || {}; e.type = "custom"; e.name = name; send(e); } };
})();
