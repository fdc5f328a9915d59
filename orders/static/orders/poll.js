// Asks the server how an order stands (templates/orders/_poll.html gives the settings)
// and, when its state changes, reloads the page or goes where it says: the buyer sees
// the payment land without clicking. Every N ms at first, slower each time without news,
// never more than one request at a time; it stops when the page is hidden for good or
// after the give-up time.
(function () {
  var node = document.getElementById("order-poll");
  if (!node || !window.fetch) return;
  var poll = JSON.parse(node.textContent);
  var wait = poll.every, started = Date.now();
  var status = document.getElementById("poll-status");

  function next() {
    if (Date.now() - started > poll.giveUp) {
      if (status) status.textContent = "Stopped checking; reload the page to check again.";
      return;
    }
    setTimeout(ask, wait);
    wait = Math.min(Math.round(wait * poll.backoff), poll.max);
  }

  function ask() {
    fetch(poll.url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (answer && answer.state !== poll.state) {
          if (poll.go) window.location.assign(poll.go);
          else window.location.reload();
          return;
        }
        next();
      })
      .catch(next);
  }

  next();
})();
