// The time left of Messenger's Log In (its linking token lasts 5 minutes), counted down on
// the page; once it is over the page offers to start again from Messenger. Without this
// script the page says how many minutes were left when it was shown, and the server
// refuses an expired Log In anyway.
(function () {
  "use strict";
  const timer = document.querySelector(".c-timer[data-expires-at]");
  if (!timer) return;
  const expiresAt = Date.parse(timer.dataset.expiresAt);
  const left = timer.querySelector(".c-timer-left");
  const over = timer.querySelector(".c-timer-over");
  // The sentence in the page's language, with "{time}" where the minutes and seconds go.
  const sentence = timer.dataset.leftText || "{time} left to finish linking";
  let shown = "";

  function tick() {
    const seconds = Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000));
    if (seconds === 0) {
      left.hidden = true;
      over.hidden = false;
      timer.classList.add("c-expired");
      document.querySelectorAll(".c-decide button, .c-form button").forEach((button) => {
        button.disabled = true;
      });
      return;
    }
    const minutes = Math.floor(seconds / 60);
    const text = sentence.replace("{time}", `${minutes}:${String(seconds % 60).padStart(2, "0")}`);
    if (text !== shown) {
      left.textContent = text;
      shown = text;
    }
    // Announce the time to screen readers once a minute, not every second.
    left.setAttribute("aria-live", seconds % 60 === 0 ? "polite" : "off");
    window.setTimeout(tick, 250);
  }
  tick();
})();
