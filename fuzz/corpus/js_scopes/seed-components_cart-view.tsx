// A TSX component (classic JSX factory `h`) that fills a Store.Cart.
import { Store } from './store.ts';
import { h } from './h.js';

type CartProps = { items: readonly string[] };

export function CartView({ items }: CartProps) {
  const cart = new Store.Cart();
  for (const item of items) {
    cart.add(item);
  }
  return <ul class="cart">{items.map((item) => <li key={item}>{item}</li>)}</ul>;
}

export function renderCart(items: string[]) {
  return CartView({ items });
}
