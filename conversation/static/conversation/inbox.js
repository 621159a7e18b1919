// The agent inbox updates itself: the list and a conversation each poll a small JSON feed.
(function () {
  "use strict";

  function poll(url, every, show) {
    async function refresh() {
      try {
        var response = await fetch(url, {headers: {"Accept": "application/json"}});
        if (!response.ok) return;
        show(await response.json());
      } catch (error) { /* the next poll retries */ }
    }
    setInterval(refresh, every);
  }

  var table = document.getElementById("inbox");
  if (table) {
    var body = table.querySelector("tbody");
    var cell = function (text, link) {
      var td = document.createElement("td");
      if (link) { var a = document.createElement("a"); a.href = link; a.textContent = text; td.appendChild(a); }
      else { td.textContent = text || "—"; }
      return td;
    };
    var pill = function (td, kind, text) {
      var span = document.createElement("span"); span.className = "pill " + kind; span.textContent = text;
      return span;
    };
    poll(table.dataset.feed, 3000, function (data) {
      var rows = data.conversations.map(function (c) {
        var tr = document.createElement("tr");
        if (c.urgent) tr.className = "urgent";
        var why = cell(c.reason);
        if (c.urgent) { why.textContent = " " + (c.reason || "—"); why.prepend(pill(why, "bad", "Urgent")); }
        var waiting = cell(c.waiting);
        waiting.className = "nowrap";
        if (c.over_target) { waiting.append(" "); waiting.appendChild(pill(waiting, "warn", "Over target")); }
        var who = cell(c.customer, c.url);
        if (c.consent_ended) { who.append(" "); who.appendChild(pill(who, "neutral", "Stopped sharing")); }
        [who, why, waiting, cell(c.last_message), cell(c.assigned_to), cell(c.updated_at)]
          .forEach(function (td) { tr.appendChild(td); });
        tr.lastChild.className = "nowrap";
        return tr;
      });
      if (!rows.length) {
        var empty = document.createElement("tr"); empty.className = "muted";
        var td = cell("Nobody is waiting for a person."); td.colSpan = 6; empty.appendChild(td); rows = [empty];
      }
      body.replaceChildren.apply(body, rows);
    });
  }

  var thread = document.getElementById("thread");
  if (thread && thread.dataset.feed) {
    var item = function (m) {
      var li = document.createElement("li");
      li.className = "inbox-msg " + m.direction + (m.failed ? " failed" : "");
      li.dataset.id = m.id;
      var meta = document.createElement("div");
      meta.className = "small muted";
      meta.textContent = m.author + (m.by ? " (" + m.by + ")" : "") + " · " + m.at + (m.direction === "out" ? " · " + m.state : "");
      var text = document.createElement("div");
      text.className = "inbox-text plain"; text.textContent = m.text;
      li.appendChild(meta); li.appendChild(text);
      if (m.failed && m.detail) { var d = document.createElement("div"); d.className = "small reason bad"; d.textContent = m.detail; li.appendChild(d); }
      return li;
    };
    thread.scrollTop = thread.scrollHeight;
    poll(thread.dataset.feed, 2000, function (data) {
      var seen = {};
      thread.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = li; });
      var empty = thread.querySelector("li.inbox-empty");
      data.messages.forEach(function (m) {
        var fresh = item(m);
        if (seen[m.id]) { if (seen[m.id].textContent !== fresh.textContent) seen[m.id].replaceWith(fresh); }
        else { if (empty) { empty.remove(); empty = null; } thread.appendChild(fresh); thread.scrollTop = thread.scrollHeight; }
      });
    });
  }
})();
