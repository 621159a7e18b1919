// New messages from the bank appear without a reload.
(function () {
  "use strict";
  var thread = document.getElementById("thread");
  if (!thread) return;
  async function refresh() {
    try {
      var response = await fetch(thread.dataset.src, {headers: {"X-Requested-With": "fetch"}});
      if (response.ok) {
        var html = await response.text();
        if (html !== thread.dataset.last) {
          thread.innerHTML = html;
          thread.dataset.last = html;
          thread.scrollTop = thread.scrollHeight;
        }
      }
    } catch (error) { /* the next poll retries */ }
  }
  thread.scrollTop = thread.scrollHeight;
  setInterval(refresh, 1500);
})();
