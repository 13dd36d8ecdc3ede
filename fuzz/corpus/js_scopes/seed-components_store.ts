// A TypeScript namespace holding a class: its methods are named `Store.Cart.add`.
export namespace Store {
  export const limit: number = 3;

  export class Cart {
    private readonly items: string[] = [];

    add(item: string): number {
      if (item.includes(' ')) {
        throw new TypeError(`not a single item: ${item}`);
      }
      return this.items.push(item);
    }

    get size(): number {
      return this.items.length;
    }
  }
}
