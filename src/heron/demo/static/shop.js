// The demo shop's own script. Parts of it are slow or broken on purpose: Heron's browser
// SDK must report them (heron/demo/pages.py says which and why).
"use strict";

function busyWait(ms) {
  // A handler that blocks the main thread, as an expensive re-render would.
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

// The signed-in shopper (the demo has no accounts): RUM sessions show who they were.
(function () {
  try {
    let id = localStorage.getItem("shopper");
    if (!id) {
      id = "shopper-" + Math.floor(Math.random() * 1000);
      localStorage.setItem("shopper", id);
    }
    if (window.heron && window.heron.setUser) window.heron.setUser(id);
  } catch (e) { /* storage disabled: anonymous */ }
})();

function say(text) {
  document.getElementById("status").textContent = text;
}

function addToCart(button) {
  busyWait(250);
  const id = button.dataset.productId;
  // Same origin: the SDK adds traceparent, so this request joins a backend trace.
  return fetch("/products/" + encodeURIComponent(id), {headers: {Accept: "application/json"}})
    .then(function (r) { return r.json(); })
    .then(function (body) {
      const ids = (document.cookie.match(/(?:^|; )cart=([0-9.]*)/) || [, ""])[1];
      const cart = ids ? ids.split(".") : [];
      cart.push(String(body.product.id));
      document.cookie = "cart=" + cart.slice(-20).join(".") + "; path=/; SameSite=Lax";
      say("Added " + body.product.name + " to the cart");
    });
}

function applyCoupon() {
  // The demo's bug: coupons are looked up in a table that never loaded.
  const coupons = window.shopCoupons;
  const code = document.getElementById("coupon").value;
  say("Coupon " + coupons[code].label + " applied");  // TypeError: coupons is undefined
}

async function placeOrder(form) {
  const items = form.dataset.items ? form.dataset.items.split(".") : ["1"];
  const card = document.getElementById("card").value;
  const r = await fetch("/checkout", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({
      customer_id: 1,
      items: items.map(function (id) { return {product_id: Number(id), qty: 1}; }),
      card: card,
    }),
  });
  if (!r.ok) {
    // Nobody catches this: an unhandled rejection.
    throw new Error("checkout failed with HTTP " + r.status);
  }
  say("Order placed");
}

document.addEventListener("click", function (e) {
  const target = e.target;
  if (!(target instanceof HTMLElement)) return;
  if (target.id === "add-to-cart") addToCart(target);
  else if (target.id === "apply-coupon") applyCoupon();
  else if (target.id === "place-order") placeOrder(target.closest("form"));
});
