// Status filters. Without JS the filter bar stays hidden and every card shows.
(function () {
  "use strict";
  var nav = document.querySelector(".filters");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var buttons = Array.prototype.slice.call(nav.querySelectorAll("button[data-filter]"));
  var shown = document.getElementById("shown");

  function matches(card, filter) {
    if (filter === "all") return true;
    if (filter === "attention") return card.getAttribute("data-attention") === "true";
    return "status:" + card.getAttribute("data-status") === filter;
  }

  function apply(filter) {
    var count = 0;
    cards.forEach(function (card) {
      card.hidden = !matches(card, filter);
      if (!card.hidden) count += 1;
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === filter));
    });
    shown.textContent = count + " of " + cards.length + " shown";
  }

  nav.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-filter]");
    if (!button) return;
    // pressing the active filter again goes back to everything
    var active = button.getAttribute("aria-pressed") === "true";
    apply(active ? "all" : button.getAttribute("data-filter"));
  });
  nav.hidden = false;
})();
