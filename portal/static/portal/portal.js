// Small progressive enhancements for the staff pages; everything works without them.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 2000);
    });
  });
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // A card whose table is wider than the card scrolls sideways; the keyboard must reach it
  // to scroll it. Tables drawn in a `.scroll-box` already are; this covers the others.
  function reachScrollingCards() {
    document.querySelectorAll(".table-card").forEach(function (card) {
      if (card.hasAttribute("tabindex") || card.scrollWidth <= card.clientWidth) return;
      var heading = card.querySelector("h2, h3");
      card.setAttribute("tabindex", "0");
      if (!card.hasAttribute("aria-labelledby") && !card.hasAttribute("aria-label")) {
        card.setAttribute("role", "region");
        card.setAttribute("aria-label", (heading ? heading.textContent.trim() : "Table") + ", scrolls sideways");
      }
    });
  }
  reachScrollingCards();
  window.addEventListener("resize", reachScrollingCards);

  // A passkey just registered (django-otp-webauthn's script) is named on its own page.
  document.addEventListener("otp_webauthn.register_complete", function (event) {
    var panel = document.getElementById("passkey-register");
    if (!panel || !event.detail || !event.detail.id) return;
    var url = panel.getAttribute("data-name-url").replace("/0/", "/" + event.detail.id + "/");
    window.location.assign(url);
  });

  // Message template editor: insert placeholders, and preview the text as it is typed.
  var editor = document.getElementById("template-form");
  if (!editor) return;
  var body = editor.querySelector("textarea[name=body]");
  var output = document.getElementById("template-preview");
  var errors = document.getElementById("template-preview-errors");
  var length = document.getElementById("template-preview-length");
  var timer = null;
  var latest = 0;

  function field(name) {
    var input = editor.querySelector("[name=" + name + "]");
    return input ? input.value : editor.getAttribute("data-" + name.replace("_", "-")) || "";
  }

  function refresh() {
    var ticket = ++latest;
    var data = new FormData();
    data.append("body", body.value);
    data.append("event_type", field("event_type"));
    data.append("locale", field("locale"));
    data.append("csrfmiddlewaretoken", editor.querySelector("[name=csrfmiddlewaretoken]").value);
    fetch(editor.getAttribute("data-preview-url"), {
      method: "POST", body: data, credentials: "same-origin",
      headers: {"X-Requested-With": "fetch"}
    }).then(function (response) { return response.json(); }).then(function (preview) {
      if (ticket !== latest) return;  // an older answer arriving late
      output.textContent = preview.text || "";
      errors.textContent = "";
      (preview.errors || []).forEach(function (message) {
        var item = document.createElement("li");
        item.textContent = message;
        errors.appendChild(item);
      });
      length.textContent = String(preview.length || 0);
      editor.setAttribute("data-preview-state", "ready");
    }).catch(function () {
      if (ticket === latest) errors.textContent = "The preview could not be updated.";
    });
  }

  function showPlaceholdersOf(eventType) {
    editor.querySelectorAll("[data-placeholders-for]").forEach(function (list) {
      list.hidden = list.getAttribute("data-placeholders-for") !== eventType;
    });
  }

  function schedule() {
    showPlaceholdersOf(field("event_type"));
    editor.setAttribute("data-preview-state", "pending");
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  editor.addEventListener("input", schedule);
  editor.addEventListener("change", schedule);
  editor.addEventListener("click", function (event) {
    var chip = event.target.closest("[data-insert]");
    if (!chip) return;
    var text = chip.getAttribute("data-insert");
    var start = body.selectionStart, end = body.selectionEnd;
    body.value = body.value.slice(0, start) + text + body.value.slice(end);
    body.focus();
    body.selectionStart = body.selectionEnd = start + text.length;
    schedule();
  });
})();
