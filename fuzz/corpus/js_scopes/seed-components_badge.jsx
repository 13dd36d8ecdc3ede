// A JSX component (classic JSX factory `h`) that checks its props with a third-party helper.
import invariant from 'tiny-invariant-lite';
import { h } from './h.js';

export const Badge = ({ count }) => {
  invariant(count >= 0, 'a badge counts from zero');
  return <span class="badge">{count}</span>;
};
