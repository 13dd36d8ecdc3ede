//! Function scopes of one original source file, named the way the code reads and the way V8
//! names functions: parsed with swc in the file's own syntax (JavaScript with JSX, TypeScript,
//! TSX), each function, arrow and class body a scope with a qualified name.
//!
//! Names: a function declaration or named function expression by its own name; an anonymous
//! function or arrow by what it is assigned to (`const f = () => …`, `a.b.c = function () …`,
//! `{ key: function () … }`, `{ key() … }`, `Object.defineProperty(o, 'x', { value() … })`
//! → `value`, a class field `handler = () => …`, a default parameter, `export default`);
//! methods, fields and object members qualified by their class, by the object they are
//! assigned to and by the enclosing TypeScript namespaces, each part joined with `.`
//! (`Store.Cart.add`, `emitter.prototype.emit`); a class body (its field initializers and
//! constructor) `new Name`; getters and setters `get Name.key` / `set Name.key`. A function
//! passed as an argument (a callback) is anonymous, as V8 prints it.
//!
//! Pure: text in, scopes out. Never panics on input: a source that does not parse gives
//! `None`. The parser recurses per nesting level; callers run it on a thread with a stack
//! sized for the input (`scopes.rs`).

use swc_common::{BytePos, Span};
use swc_ecma_ast as ast;
use swc_ecma_parser::{EsSyntax, Parser, StringInput, Syntax, TsSyntax};
use swc_ecma_visit::{AstNodePath, AstParentNodeRef as Parent, VisitAstPath, VisitWithAstPath};

/// One function scope: byte range `[start, end)` of the source and its name (`None`:
/// anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub start: u32,
    pub end: u32,
    pub name: Option<String>,
}

/// The syntaxes to try for a source, by the extension of its path: its own first, then the
/// others (a `.js` file may hold JSX, an extension-less path anything).
fn syntaxes(path: &str) -> Vec<Syntax> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let extension = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let es = Syntax::Es(EsSyntax {
        jsx: true,
        decorators: true,
        ..Default::default()
    });
    let ts = |tsx| {
        Syntax::Typescript(TsSyntax {
            tsx,
            decorators: true,
            ..Default::default()
        })
    };
    match extension.as_str() {
        "ts" | "mts" | "cts" => vec![ts(false), ts(true), es],
        "tsx" => vec![ts(true), ts(false), es],
        _ => vec![es, ts(false), ts(true)],
    }
}

/// The function scopes of `source` (sorted by start, nested ranges after their parents), or
/// `None` when it parses in none of the syntaxes its path suggests.
pub(crate) fn function_scopes(path: &str, source: &str) -> Option<Vec<Scope>> {
    let end = u32::try_from(source.len()).ok()?;
    let program = syntaxes(path).into_iter().find_map(|syntax| {
        let input = StringInput::new(source, BytePos(0), BytePos(end));
        let mut parser = Parser::new(syntax, input, None);
        let program = parser.parse_program().ok()?;
        // Recovered errors mean the syntax was wrong (TypeScript read as JavaScript…).
        parser.take_errors().is_empty().then_some(program)
    })?;
    let mut collector = Collector { scopes: Vec::new() };
    program.visit_with_ast_path(&mut collector, &mut Default::default());
    let mut scopes = collector.scopes;
    scopes.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    Some(scopes)
}

struct Collector {
    scopes: Vec<Scope>,
}

impl Collector {
    fn push(&mut self, span: Span, name: Option<String>) {
        let (start, end) = (span.lo.0, span.hi.0);
        if start < end {
            self.scopes.push(Scope { start, end, name });
        }
    }
}

impl VisitAstPath for Collector {
    fn visit_arrow_expr<'ast: 'r, 'r>(
        &mut self,
        node: &'ast ast::ArrowExpr,
        path: &mut AstNodePath<'r>,
    ) {
        self.push(node.span, context_name(path));
        node.visit_children_with_ast_path(self, path);
    }

    fn visit_function<'ast: 'r, 'r>(
        &mut self,
        node: &'ast ast::Function,
        path: &mut AstNodePath<'r>,
    ) {
        let own = match path.last() {
            Some(Parent::FnDecl(decl, _)) => Some(decl.ident.sym.to_string()),
            Some(Parent::FnExpr(expr, _)) => expr.ident.as_ref().map(|i| i.sym.to_string()),
            _ => None,
        };
        let name = match own {
            // A named function keeps its name, qualified like an anonymous one would be
            // (`obj.run = function go() {}` → `obj.go`).
            Some(own) => {
                let qualifier = context_name(path)
                    .and_then(|n| n.rsplit_once('.').map(|(q, _)| q.to_owned()))
                    .or_else(|| namespace_prefix(path));
                Some(join(qualifier, &own))
            }
            None => context_name(path),
        };
        self.push(node.span, name);
        node.visit_children_with_ast_path(self, path);
    }

    // Object literal accessors have a body but no `Function` node.
    fn visit_getter_prop<'ast: 'r, 'r>(
        &mut self,
        node: &'ast ast::GetterProp,
        path: &mut AstNodePath<'r>,
    ) {
        let name = accessor_name(&node.key, path).map(|n| format!("get {n}"));
        self.push(node.span, name);
        node.visit_children_with_ast_path(self, path);
    }

    fn visit_setter_prop<'ast: 'r, 'r>(
        &mut self,
        node: &'ast ast::SetterProp,
        path: &mut AstNodePath<'r>,
    ) {
        let name = accessor_name(&node.key, path).map(|n| format!("set {n}"));
        self.push(node.span, name);
        node.visit_children_with_ast_path(self, path);
    }

    // The whole class body is a scope: field initializers run as part of the constructor.
    fn visit_class<'ast: 'r, 'r>(&mut self, node: &'ast ast::Class, path: &mut AstNodePath<'r>) {
        let name = class_name(path).map(|n| format!("new {n}"));
        self.push(node.span, name);
        node.visit_children_with_ast_path(self, path);
    }
}

/// `object.key` for an accessor of an object literal (`path` ends above the accessor).
fn accessor_name(key: &ast::PropName, path: &AstNodePath<'_>) -> Option<String> {
    let parents: Vec<&Parent<'_>> = path.iter().rev().collect();
    let key = prop_name(key)?;
    let holder = parents
        .iter()
        .position(|p| matches!(p, Parent::ObjectLit(..)))
        .and_then(|i| object_name(&parents[i + 1..]));
    Some(join(holder, &key))
}

/// `qualifier.name`, or `name`.
fn join(qualifier: Option<String>, name: &str) -> String {
    match qualifier {
        Some(q) if !q.is_empty() => format!("{q}.{name}"),
        _ => name.to_owned(),
    }
}

/// The qualified name of the class whose `Class` node is the last element of `path`.
fn class_name(path: &AstNodePath<'_>) -> Option<String> {
    match path.last() {
        Some(Parent::ClassDecl(decl, _)) => Some(join(namespace_prefix(path), &decl.ident.sym)),
        Some(Parent::ClassExpr(expr, _)) => match &expr.ident {
            Some(ident) => {
                let qualifier = context_name(path)
                    .and_then(|n| n.rsplit_once('.').map(|(q, _)| q.to_owned()))
                    .or_else(|| namespace_prefix(path));
                Some(join(qualifier, &ident.sym))
            }
            None => context_name(path),
        },
        _ => None,
    }
}

/// The names of the TypeScript namespaces around the last element of `path`, up to the
/// enclosing function (`Store.Inner`).
fn namespace_prefix(path: &AstNodePath<'_>) -> Option<String> {
    namespace_prefix_in(path.iter().rev())
}

/// The namespace names among `parents` (innermost first), up to the first function boundary.
fn namespace_prefix_in<'a, 'p: 'a>(
    parents: impl Iterator<Item = &'a Parent<'p>>,
) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for parent in parents {
        match parent {
            Parent::TsModuleDecl(decl, _) => {
                if let ast::TsModuleName::Ident(ident) = &decl.id {
                    parts.push(ident.sym.to_string());
                }
            }
            Parent::TsNamespaceDecl(decl, _) => parts.push(decl.id.sym.to_string()),
            parent if is_function_boundary(parent) => break,
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| {
        parts.reverse();
        parts.join(".")
    })
}

fn is_function_boundary(parent: &Parent<'_>) -> bool {
    matches!(
        parent,
        Parent::Function(..) | Parent::ArrowExpr(..) | Parent::Constructor(..)
    )
}

/// The name an anonymous function, arrow or class gets from where it stands: the last element
/// of `path` is its own node (or the `FnExpr`/`ClassExpr` wrapping it).
fn context_name(path: &AstNodePath<'_>) -> Option<String> {
    let parents: Vec<&Parent<'_>> = path.iter().rev().collect();
    let mut i = 0;
    // Skip the node's own wrappers and expressions that pass a value through unchanged.
    while let Some(parent) = parents.get(i) {
        match parent {
            Parent::FnExpr(..)
            | Parent::ClassExpr(..)
            | Parent::Expr(..)
            | Parent::ParenExpr(..)
            | Parent::TsAsExpr(..)
            | Parent::TsSatisfiesExpr(..)
            | Parent::TsNonNullExpr(..)
            | Parent::TsTypeAssertion(..)
            | Parent::TsConstAssertion(..) => i += 1,
            _ => break,
        }
    }
    let rest = &parents[i.min(parents.len())..];
    let parent = rest.first()?;
    match parent {
        Parent::VarDeclarator(decl, _) => match &decl.name {
            ast::Pat::Ident(ident) => Some(join(namespace_prefix(path), &ident.id.sym)),
            _ => None,
        },
        Parent::AssignExpr(assign, _) => assign_target_name(&assign.left),
        Parent::AssignPat(pat, _) => match &*pat.left {
            ast::Pat::Ident(ident) => Some(ident.id.sym.to_string()),
            _ => None,
        },
        Parent::AssignPatProp(prop, _) => Some(prop.key.sym.to_string()),
        Parent::KeyValueProp(prop, _) => member_name(&prop.key, rest),
        Parent::MethodProp(prop, _) => member_name(&prop.key, rest),
        Parent::GetterProp(prop, _) => member_name(&prop.key, rest).map(|n| format!("get {n}")),
        Parent::SetterProp(prop, _) => member_name(&prop.key, rest).map(|n| format!("set {n}")),
        Parent::ClassMethod(method, _) => {
            let name = class_member_name(prop_name(&method.key)?, rest);
            Some(match method.kind {
                ast::MethodKind::Getter => format!("get {name}"),
                ast::MethodKind::Setter => format!("set {name}"),
                ast::MethodKind::Method => name,
            })
        }
        Parent::PrivateMethod(method, _) => {
            Some(class_member_name(format!("#{}", method.key.name), rest))
        }
        Parent::ClassProp(prop, _) => Some(class_member_name(prop_name(&prop.key)?, rest)),
        Parent::PrivateProp(prop, _) => {
            Some(class_member_name(format!("#{}", prop.key.name), rest))
        }
        Parent::ExportDefaultDecl(..) | Parent::ExportDefaultExpr(..) => Some("default".to_owned()),
        _ => None,
    }
}

/// `key`, qualified by the name of the object literal it is a member of (when that object is
/// assigned to something with a name), else just `key` (V8 names the function by its key).
fn member_name(key: &ast::PropName, rest: &[&Parent<'_>]) -> Option<String> {
    let key = prop_name(key)?;
    // rest[0] is the property; then Prop, PropOrSpread, ObjectLit, and what holds the object.
    let object = rest
        .iter()
        .position(|p| matches!(p, Parent::ObjectLit(..)))?;
    let holder = object_name(&rest[object + 1..]);
    Some(join(holder, &key))
}

/// The name of an object literal from what holds it (`rest[0]` is its parent).
fn object_name(rest: &[&Parent<'_>]) -> Option<String> {
    let mut i = 0;
    while let Some(
        Parent::Expr(..)
        | Parent::ParenExpr(..)
        | Parent::TsAsExpr(..)
        | Parent::TsSatisfiesExpr(..)
        | Parent::TsConstAssertion(..),
    ) = rest.get(i)
    {
        i += 1;
    }
    match rest.get(i)? {
        Parent::VarDeclarator(decl, _) => match &decl.name {
            ast::Pat::Ident(ident) => {
                let prefix = namespace_prefix_of(&rest[i..]);
                Some(join(prefix, &ident.id.sym))
            }
            _ => None,
        },
        Parent::AssignExpr(assign, _) => assign_target_name(&assign.left),
        Parent::KeyValueProp(prop, _) => member_name(&prop.key, &rest[i..]),
        _ => None,
    }
}

/// [`namespace_prefix`] over a slice of parents, innermost first.
fn namespace_prefix_of(rest: &[&Parent<'_>]) -> Option<String> {
    namespace_prefix_in(rest.iter().copied())
}

/// `Class.member` for a member of the class found further up `rest`.
fn class_member_name(member: String, rest: &[&Parent<'_>]) -> String {
    let class = rest.iter().enumerate().find_map(|(i, p)| match p {
        Parent::ClassDecl(decl, _) => Some(join(namespace_prefix_of(&rest[i..]), &decl.ident.sym)),
        Parent::ClassExpr(expr, _) => match &expr.ident {
            Some(ident) => Some(ident.sym.to_string()),
            None => object_name(&rest[i + 1..]).or(Some(String::new())),
        },
        _ => None,
    });
    join(class, &member)
}

/// `a.b.c` for an assignment target made of identifiers, `this` and static members.
fn assign_target_name(target: &ast::AssignTarget) -> Option<String> {
    match target {
        ast::AssignTarget::Simple(ast::SimpleAssignTarget::Ident(ident)) => {
            Some(ident.id.sym.to_string())
        }
        ast::AssignTarget::Simple(ast::SimpleAssignTarget::Member(member)) => {
            member_expr_name(member)
        }
        _ => None,
    }
}

fn member_expr_name(member: &ast::MemberExpr) -> Option<String> {
    let object = expr_name(&member.obj)?;
    let property = match &member.prop {
        ast::MemberProp::Ident(ident) => ident.sym.to_string(),
        ast::MemberProp::PrivateName(name) => format!("#{}", name.name),
        ast::MemberProp::Computed(computed) => match &*computed.expr {
            ast::Expr::Lit(ast::Lit::Str(s)) => s.value.to_string_lossy().into_owned(),
            ast::Expr::Lit(ast::Lit::Num(n)) => n.value.to_string(),
            _ => return None,
        },
    };
    Some(join(Some(object), &property))
}

fn expr_name(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Ident(ident) => Some(ident.sym.to_string()),
        ast::Expr::This(_) => Some("this".to_owned()),
        ast::Expr::Member(member) => member_expr_name(member),
        ast::Expr::Paren(paren) => expr_name(&paren.expr),
        _ => None,
    }
}

fn prop_name(key: &ast::PropName) -> Option<String> {
    match key {
        ast::PropName::Ident(ident) => Some(ident.sym.to_string()),
        ast::PropName::Str(s) => Some(s.value.to_string_lossy().into_owned()),
        ast::PropName::Num(n) => Some(n.value.to_string()),
        ast::PropName::BigInt(b) => Some(b.value.to_string()),
        ast::PropName::Computed(_) => None,
    }
}
