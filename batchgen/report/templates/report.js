// Filters (status buttons, a select per team column), grouping, local times, inline play.
// Without JS the filter bar stays hidden, every card shows and times stay in UTC.
(function () {
  "use strict";
  var nav = document.querySelector(".filters");
  var grid = document.getElementById("cards");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var buttons = Array.prototype.slice.call(nav.querySelectorAll("button[data-filter]"));
  var selects = Array.prototype.slice.call(nav.querySelectorAll("select[data-column-filter]"));
  var groupBy = document.getElementById("group-by");
  var shown = document.getElementById("shown");
  var statusFilter = "all";

  function value(card, column) {
    if (column === "status") return card.getAttribute("data-status");
    var cells = card.querySelectorAll(".team dd[data-column]");
    for (var i = 0; i < cells.length; i += 1) {
      if (cells[i].getAttribute("data-column") === column) return cells[i].getAttribute("data-value");
    }
    return "";
  }

  function matchesStatus(card) {
    if (statusFilter === "all") return true;
    if (statusFilter === "attention") return card.getAttribute("data-attention") === "true";
    return "status:" + card.getAttribute("data-status") === statusFilter;
  }

  function matches(card) {
    return matchesStatus(card) && selects.every(function (select) {
      var any = select.selectedOptions[0] && select.selectedOptions[0].hasAttribute("data-any");
      return any || value(card, select.getAttribute("data-column-filter")) === select.value;
    });
  }

  // groups in the order the filters list them: statuses by a row's life, values sorted
  function groupOrder(column) {
    if (column === "status") {
      return buttons.map(function (b) { return b.getAttribute("data-filter"); })
        .filter(function (f) { return f.indexOf("status:") === 0; })
        .map(function (f) { return f.slice("status:".length); });
    }
    var select = selects.filter(function (s) {
      return s.getAttribute("data-column-filter") === column;
    })[0];
    if (!select) return [];
    return Array.prototype.slice.call(select.options)
      .filter(function (o) { return !o.hasAttribute("data-any"); })
      .map(function (o) { return o.value; });
  }

  // cards in spreadsheet order, or under one heading per value of the chosen column
  function arrange() {
    Array.prototype.slice.call(grid.querySelectorAll(".group-heading")).forEach(function (h) {
      h.remove();
    });
    var column = groupBy ? groupBy.value : "";
    if (!column) {
      cards.forEach(function (card) { grid.appendChild(card); });
      return;
    }
    var groups = {};
    var order = groupOrder(column);
    cards.forEach(function (card) {
      var key = value(card, column);
      if (!groups[key]) { groups[key] = []; if (order.indexOf(key) < 0) order.push(key); }
      groups[key].push(card);
    });
    order = order.filter(function (key) { return groups[key]; });
    order.forEach(function (key) {
      var members = groups[key];
      var visible = members.filter(function (card) { return !card.hidden; }).length;
      var heading = document.createElement("h2");
      heading.className = "group-heading";
      heading.textContent = column + ": " + (key || "(blank)") + " (" + visible + ")";
      heading.hidden = visible === 0;
      grid.appendChild(heading);
      members.forEach(function (card) { grid.appendChild(card); });
    });
  }

  function apply() {
    var count = 0;
    cards.forEach(function (card) {
      card.hidden = !matches(card);
      if (!card.hidden) count += 1;
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === statusFilter));
    });
    arrange();
    shown.textContent = count + " of " + cards.length + " shown";
  }

  nav.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-filter]");
    if (!button) return;
    // pressing the active filter again goes back to everything
    var active = button.getAttribute("aria-pressed") === "true";
    statusFilter = active ? "all" : button.getAttribute("data-filter");
    apply();
  });
  nav.addEventListener("change", apply);
  nav.hidden = false;

  // the reader's own time and zone; the UTC original stays in the title
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short"
  });
  Array.prototype.slice.call(document.querySelectorAll("time[datetime]")).forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime())) el.textContent = format.format(when);
  });

  // Play swaps the thumbnail for the local video, with the thumbnail as its poster
  Array.prototype.slice.call(document.querySelectorAll(".thumb .play")).forEach(function (play) {
    var frame = play.parentNode;
    var video = frame.querySelector("video.inline");
    var image = frame.querySelector("img.result");
    play.hidden = false;
    play.addEventListener("click", function () {
      if (image) { video.poster = image.src; image.hidden = true; }
      video.hidden = false;
      play.hidden = true;
      video.play().catch(function () { /* an unplayable file keeps its controls */ });
    });
  });
})();
