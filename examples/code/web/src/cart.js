// A shopping cart kept in the browser's local storage.

const STORAGE_KEY = "cart.v1";

export function load() {
  const raw = window.localStorage.getItem(STORAGE_KEY);
  return raw ? JSON.parse(raw) : { items: [] };
}

export function save(cart) {
  window.localStorage.setItem(STORAGE_KEY, JSON.stringify(cart));
}

export function add(cart, product, quantity = 1) {
  const line = cart.items.find((item) => item.id === product.id);
  if (line) {
    line.quantity += quantity;
  } else {
    cart.items.push({ id: product.id, name: product.name, price: product.price, quantity });
  }
  return cart;
}

export function remove(cart, productId) {
  cart.items = cart.items.filter((item) => item.id !== productId);
  return cart;
}

export function total(cart) {
  return cart.items.reduce((sum, item) => sum + item.price * item.quantity, 0);
}
