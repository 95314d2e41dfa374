/*
 * The XS-safety check: what modules/ (and the firmware bundled with them) may not touch.
 * An AST walk with the TypeScript parser, run by the bundler on every device-side file (the
 * build fails on a finding) and by test/xs over modules/.
 *
 * A finding is: an import of a Node builtin or of anything outside the device side, or a free
 * reference (not a property name, not declared in the file) to a Node, DOM or host global:
 * no Buffer, process, require, timers (time comes only from the ClockPort), TextEncoder/Decoder
 * (optional on the chip: modules/bytes.ts does UTF-8), fetch/URL, wall-clock Date.now, Math.random.
 */
import ts from "typescript";
import { builtinModules } from "node:module";

export const FORBIDDEN_GLOBALS: readonly string[] = [
  "Buffer", "process", "require", "module", "exports", "__dirname", "__filename", "global",
  "setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "clearImmediate", "queueMicrotask",
  "TextEncoder", "TextDecoder", "fetch", "URL", "URLSearchParams", "atob", "btoa", "structuredClone",
  "window", "document", "navigator", "localStorage", "XMLHttpRequest", "WebSocket", "performance",
];

/** Member expressions that leak host state into the device logic. */
export const FORBIDDEN_MEMBERS: readonly string[] = ["Date.now", "Math.random"];

export interface Finding {
  file: string;
  line: number;
  what: string;
}

const BUILTINS = new Set(builtinModules);

function isNodeModule(spec: string): boolean {
  return spec.startsWith("node:") || BUILTINS.has(spec) || BUILTINS.has(spec.split("/")[0]!);
}

function declaredNames(sf: ts.SourceFile): Set<string> {
  const names = new Set<string>();
  const visit = (n: ts.Node): void => {
    if ((ts.isVariableDeclaration(n) || ts.isParameter(n) || ts.isFunctionDeclaration(n) || ts.isClassDeclaration(n) || ts.isBindingElement(n)) && n.name && ts.isIdentifier(n.name)) {
      names.add(n.name.text);
    }
    if (ts.isImportSpecifier(n) || ts.isImportClause(n) || ts.isNamespaceImport(n)) {
      if (n.name) names.add(n.name.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return names;
}

/** Is this identifier a value reference (not a property name, key, type, or declaration name)? */
function isFreeReference(id: ts.Identifier): boolean {
  const p = id.parent;
  if (!p) return false;
  if (ts.isPropertyAccessExpression(p) && p.name === id) return false;
  if ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isMethodDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodSignature(p) || ts.isGetAccessor(p) || ts.isSetAccessor(p) || ts.isEnumMember(p)) && p.name === id) return false;
  if (ts.isShorthandPropertyAssignment(p)) return true;
  if (ts.isQualifiedName(p) || ts.isTypeReferenceNode(p) || ts.isTypeQueryNode(p) || ts.isExpressionWithTypeArguments(p) && ts.isHeritageClause(p.parent) && p.parent.token === ts.SyntaxKind.ImplementsKeyword) return false;
  if (ts.isImportSpecifier(p) || ts.isExportSpecifier(p) || ts.isLabeledStatement(p) || ts.isBreakOrContinueStatement(p)) return false;
  let q: ts.Node | undefined = p;
  while (q) {
    if (ts.isTypeNode(q) || ts.isInterfaceDeclaration(q) || ts.isTypeAliasDeclaration(q)) return false;
    q = q.parent;
  }
  return true;
}

/**
 * Check one device-side source file. `allowImport(spec)` decides non-builtin imports
 * (default: relative imports only).
 */
export function checkSource(file: string, text: string, allowImport: (spec: string) => boolean = (s) => s.startsWith(".")): Finding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const declared = declaredNames(sf);
  const out: Finding[] = [];
  const at = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const visit = (n: ts.Node): void => {
    let spec: string | undefined;
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(n) ? n.importClause?.isTypeOnly === true : n.isTypeOnly;
      if (!typeOnly) spec = n.moduleSpecifier.text;
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
      spec = n.arguments[0].text;
    }
    if (spec !== undefined) {
      if (isNodeModule(spec)) out.push({ file, line: at(n), what: `imports Node module '${spec}'` });
      else if (!allowImport(spec)) out.push({ file, line: at(n), what: `imports '${spec}' (device code may import only its own relative modules)` });
    }
    if (ts.isIdentifier(n) && FORBIDDEN_GLOBALS.includes(n.text) && !declared.has(n.text) && isFreeReference(n)) {
      out.push({ file, line: at(n), what: `uses the host global '${n.text}'` });
    }
    if (ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression) && FORBIDDEN_MEMBERS.includes(`${n.expression.text}.${n.name.text}`)) {
      out.push({ file, line: at(n), what: `uses '${n.expression.text}.${n.name.text}' (time and randomness come through ports)` });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}
