//! Scope names from original sources (`names.rs`): separators between every qualifier, each
//! syntax parsed as itself (TypeScript, TSX, JSX), and V8's names for functions that are
//! property values. Each case names the function enclosing a marker comment `/*@*/`.

use super::super::names::function_scopes;
use super::{build_cache, map, JsCache, T};

/// The name of the innermost scope around the `/*@*/` marker in `source`.
fn name_at(path: &str, source: &str) -> Option<String> {
    let at = source.find("/*@*/").expect("marker") as u32;
    let scopes = function_scopes(path, source).unwrap_or_else(|| panic!("{path} did not parse"));
    scopes
        .iter()
        .filter(|s| s.start <= at && at < s.end)
        .min_by_key(|s| s.end - s.start)
        .and_then(|s| s.name.clone())
}

#[test]
fn nested_qualifiers_keep_their_separators() {
    let cases = [
        (
            "store.ts",
            "namespace Store { export class Cart { add(n: number) { /*@*/ return n; } } }",
            "Store.Cart.add",
        ),
        (
            "a.js",
            "emitter.prototype.emit = function (e) { /*@*/ };",
            "emitter.prototype.emit",
        ),
        (
            "a.js",
            "Store.Cart = class { add() { /*@*/ } };",
            "Store.Cart.add",
        ),
        (
            "a.js",
            "const api = { cart: { add() { /*@*/ } } };",
            "api.cart.add",
        ),
        (
            "a.ts",
            "namespace A.B { export function run() { /*@*/ } }",
            "A.B.run",
        ),
        (
            "a.js",
            "class Cart { static create() { /*@*/ } }",
            "Cart.create",
        ),
        ("a.js", "class Cart { constructor() { /*@*/ } }", "new Cart"),
    ];
    for (path, source, want) in cases {
        assert_eq!(name_at(path, source).as_deref(), Some(want), "{source}");
    }
}

#[test]
fn typescript_tsx_and_jsx_parse_in_their_own_syntax() {
    let cases = [
        (
            "money.ts",
            "export function money<T extends number>(cents: T): string { /*@*/ return `${cents as number}`; }",
            "money",
        ),
        (
            "cart.tsx",
            "export function CartView({ items }: { items: string[] }) { /*@*/ return <ul>{items.map((i) => <li key={i}>{i}</li>)}</ul>; }",
            "CartView",
        ),
        (
            "badge.jsx",
            "export const Badge = ({ n }) => { /*@*/ return <span className=\"badge\">{n}</span>; };",
            "Badge",
        ),
        (
            "legacy.js",
            "export default function App() { /*@*/ return <div />; }",
            "App",
        ),
        (
            "generic.ts",
            "const id = <T,>(x: T): T => { /*@*/ return x; };",
            "id",
        ),
    ];
    for (path, source, want) in cases {
        assert_eq!(name_at(path, source).as_deref(), Some(want), "{source}");
    }
}

#[test]
fn property_values_are_named_as_v8_names_them() {
    let cases = [
        (
            "Object.defineProperty(Cart.prototype, 'total', { value: function () { /*@*/ } });",
            Some("value"),
        ),
        (
            "Object.defineProperty(Cart.prototype, 'total', { value() { /*@*/ } });",
            Some("value"),
        ),
        (
            "Object.defineProperty(o, 'x', { get: function () { /*@*/ } });",
            Some("get"),
        ),
        (
            "class Cart { onAdd = () => { /*@*/ }; }",
            Some("Cart.onAdd"),
        ),
        (
            "class Cart { #check = function () { /*@*/ }; }",
            Some("Cart.#check"),
        ),
        ("function f(cb = () => { /*@*/ }) {}", Some("cb")),
        (
            "const cart = { get total() { /*@*/ return 1; } };",
            Some("get cart.total"),
        ),
        (
            "const cart = { set total(v) { /*@*/ } };",
            Some("set cart.total"),
        ),
        ("export default () => { /*@*/ };", Some("default")),
        ("items.forEach(function () { /*@*/ });", None),
    ];
    for (source, want) in cases {
        assert_eq!(name_at("a.js", source).as_deref(), want, "{source}");
    }
}

#[test]
fn sources_in_no_known_syntax_give_no_scopes() {
    assert!(function_scopes("a.vue", "<template><div/></template><script>x(</script>").is_none());
    assert!(function_scopes("a.ts", "function (").is_none());
}

/// Through the whole cache: a minified position mapped into a TypeScript original is named
/// from the TypeScript (it used to fall back to the minified file's scopes, which lost the
/// separator: `Store.Cartadd`).
#[test]
fn cache_names_functions_from_typescript_originals() {
    let ts = "namespace Store {\n  export class Cart {\n    add(n: number): number {\n      throw new Error(`bad ${n}`);\n    }\n  }\n}\n";
    let minified =
        "var Store;(n=>{n.Cart=class{add(t){throw new Error(`bad ${t}`)}}})(Store||={});";
    let bytes = map(
        &[("src/store.ts", Some(ts))],
        &[T(0, 0, Some(0), 0, 0, None), T(0, 42, Some(0), 3, 6, None)],
    );
    let cache_bytes = build_cache(Some(minified), &bytes).unwrap();
    let cache = JsCache::parse(&cache_bytes).unwrap();
    let loc = cache.lookup(0, 42).unwrap();
    assert_eq!((loc.line, loc.column), (4, 7));
    assert_eq!(loc.function, Some("Store.Cart.add"));
}
