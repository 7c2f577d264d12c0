"""moto's DynamoDB at the cost of what a request touches.

Profiled on the pipeline's own requests (replaying a bench run's journal), moto spent
most of its time around the work rather than in it:

- **UpdateItem**: each update expression parsed into a tree, the tree deep-copied and
  walked a dozen times, and the item's whole size re-checked for every attribute set:
  about 10 ms per item updated. The platform's updates are simple (`SET a = :v, #b =
  if_not_exists(#b, :z) + :n`, `REMOVE c`, `ADD s :set`, on top-level attributes), so
  `update_item` reads those forms once per text (cached), checks them as DynamoDB does
  and applies them directly. Anything else, or anything DynamoDB would refuse (unknown
  placeholders, a key attribute, a reserved word, a type mismatch, a missing operand, an
  item over 400 KB, two actions on one attribute), goes to moto's own code unchanged, so
  answers and errors stay moto's; so does a table with a stream (it needs the old image).
- **Parsing**: condition expressions are parsed once per (text, names, values), update
  expressions once per text (moto copies a tree before changing it).
- **Items**: the 400 KB check is made once per new item, not once per attribute.
- **Wire format**: the data operations' requests are their JSON bodies and their answers
  plain JSON, instead of moto's generic shape parser and serialiser (binary attributes
  keep moto's path: only they differ).
- **Routing**: the list of moto's modules is read once, not on every request.

`tests/unit/test_moto_speed.py` runs moto's paths and these on the same requests and
compares every item and answer.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from moto import backends
from moto.dynamodb import comparisons
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.exceptions import ConditionalCheckFailed, ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict, bytesize
from moto.dynamodb.parsing import expressions
from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

_moto_update_item = DynamoDBBackend.update_item
_moto_modules = backends.list_of_moto_modules
_moto_make = expressions.UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]
MAX_ITEM_BYTES = 400_000
ITEM_SIZE_REFUSED = 405_000  # moto's own threshold for a new item
SETS = {"SS", "NS", "BS"}

_TOKEN = re.compile(r"\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
                    r"|(?P<op>[=+\-,()]))")
CLAUSES = {"SET", "REMOVE", "ADD", "DELETE"}


@dataclass(frozen=True)
class Path:
    token: str  # `#n` or a plain attribute name


@dataclass(frozen=True)
class Value:
    token: str  # `:v`


@dataclass(frozen=True)
class Call:
    function: str  # if_not_exists | list_append
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Arith:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Plan:
    sets: tuple[tuple[Path, Any], ...]
    removes: tuple[Path, ...]
    adds: tuple[tuple[Path, Value], ...]
    deletes: tuple[tuple[Path, Value], ...]


class Unsupported(Exception):
    """Not a form handled here, or one DynamoDB would refuse: moto decides."""


@lru_cache(maxsize=1)
def _reserved() -> frozenset[str]:
    return frozenset(w.upper() for w in ReservedKeywords.get_reserved_keywords())


def _tokens(expression: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = expression.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise Unsupported(expression)
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Reader:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> str:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (text and token[1] != text):
            raise Unsupported(str(token))
        self.i += 1
        return token[1]

    def at_clause(self) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].upper() in CLAUSES and (
            self.i + 1 >= len(self.tokens) or self.tokens[self.i + 1][1] not in ("=", "("))

    def path(self) -> Path:
        token = self.peek()
        if token is None or token[0] not in ("word", "name"):
            raise Unsupported(str(token))
        if token[0] == "word" and token[1].upper() in _reserved():
            raise Unsupported(f"reserved word {token[1]}")
        self.i += 1  # a nested path (`a.b`, `a[0]`) never gets here: its `.`/`[` is not a token
        return Path(token[1])

    def operand(self) -> Any:
        token = self.peek()
        if token is None:
            raise Unsupported("operand missing")
        if token[0] == "value":
            self.i += 1
            return Value(token[1])
        if token[0] == "word" and token[1] in ("if_not_exists", "list_append") and self.i + 1 < len(self.tokens) \
                and self.tokens[self.i + 1][1] == "(":
            self.i += 2
            first = self.path() if token[1] == "if_not_exists" else self.operand()
            self.take("op", ",")
            second = self.operand()
            self.take("op", ")")
            return Call(token[1], (first, second))
        return self.path()

    def value_expression(self) -> Any:
        left = self.operand()
        token = self.peek()
        if token is not None and token[1] in ("+", "-"):
            self.i += 1
            return Arith(token[1], left, self.operand())
        return left


@lru_cache(maxsize=4096)
def plan_of(expression: str) -> Plan:
    reader = _Reader(_tokens(expression))
    sets: list[tuple[Path, Any]] = []
    removes: list[Path] = []
    adds: list[tuple[Path, Value]] = []
    deletes: list[tuple[Path, Value]] = []
    seen_clauses: set[str] = set()
    while reader.peek() is not None:
        if not reader.at_clause():
            raise Unsupported("clause expected")
        clause = reader.take("word").upper()
        if clause in seen_clauses:
            raise Unsupported("clause repeated")
        seen_clauses.add(clause)
        while True:
            path = reader.path()
            if clause == "SET":
                reader.take("op", "=")
                sets.append((path, reader.value_expression()))
            elif clause == "REMOVE":
                removes.append(path)
            else:
                value = Value(reader.take("value"))
                (adds if clause == "ADD" else deletes).append((path, value))
            token = reader.peek()
            if token is None or token[1] != ",":
                break
            reader.take("op", ",")
    targets = [p.token for p, _ in sets] + [p.token for p in removes] + [p.token for p, _ in adds] + [
        p.token for p, _ in deletes]
    if not targets or len(targets) != len(set(targets)):
        raise Unsupported("no action, or two actions on one attribute")
    return Plan(tuple(sets), tuple(removes), tuple(adds), tuple(deletes))


def _plan(expression: str) -> Plan | None:
    try:
        return plan_of(expression)
    except Unsupported:
        return None


def _name(path: Path, names: dict[str, str]) -> str:
    if path.token.startswith("#"):
        if path.token not in names:
            raise Unsupported(path.token)
        return names[path.token]
    return path.token


def _value(value: Value, values: dict[str, Any]) -> DynamoType:
    if value.token not in values:
        raise Unsupported(value.token)
    raw = values[value.token]
    if not isinstance(raw, dict) or len(raw) != 1:
        raise Unsupported(value.token)
    ((kind, inner),) = raw.items()
    if kind in SETS and not inner:
        raise Unsupported("empty set")
    return DynamoType(raw)


def _evaluate(node: Any, attrs: dict[str, DynamoType], names: dict[str, str], values: dict[str, Any]) -> DynamoType:
    if isinstance(node, Value):
        return _value(node, values)
    if isinstance(node, Path):
        name = _name(node, names)
        if name not in attrs:
            raise Unsupported(f"{name} does not exist")
        return attrs[name]
    if isinstance(node, Call):
        if node.function == "if_not_exists":
            name = _name(node.args[0], names)
            return attrs[name] if name in attrs else _evaluate(node.args[1], attrs, names, values)
        first, second = (_evaluate(a, attrs, names, values) for a in node.args)
        if first.type != "L" or second.type != "L":
            raise Unsupported("list_append of a non-list")
        return DynamoType({"L": [*first.to_json()["L"], *second.to_json()["L"]]})
    left, right = (_evaluate(x, attrs, names, values) for x in (node.left, node.right))
    if left.type != "N" or right.type != "N":
        raise Unsupported("arithmetic on a non-number")
    return left + right if node.op == "+" else left - right


def _size(attrs: dict[str, DynamoType]) -> int:
    return sum(len(k.encode()) + v.size() for k, v in attrs.items())


def apply_plan(plan: Plan, attrs: dict[str, DynamoType], keys: set[str], names: dict[str, str],
               values: dict[str, Any]) -> dict[str, DynamoType]:
    """The item's attributes after the update (a new dict); raises Unsupported where moto must decide."""
    new = dict(attrs)
    for path, node in plan.sets:
        name = _name(path, names)
        if name in keys:
            raise Unsupported("key attribute")
        new[name] = _evaluate(node, attrs, names, values)
    for path in plan.removes:
        name = _name(path, names)
        if name in keys:
            raise Unsupported("key attribute")
        new.pop(name, None)
    for path, value in plan.adds:
        name = _name(path, names)
        if name in keys:
            raise Unsupported("key attribute")
        given = _value(value, values)
        current = attrs.get(name)
        if given.type == "N":
            if current is not None and current.type != "N":
                raise Unsupported("ADD type mismatch")
            new[name] = (current if current is not None else DynamoType({"N": "0"})) + given
        elif given.type in SETS:
            if current is not None and current.type != given.type:
                raise Unsupported("ADD type mismatch")
            merged = list(dict.fromkeys([*(current.value if current is not None else []), *given.value]))
            new[name] = DynamoType({given.type: merged})
        else:
            raise Unsupported("ADD of a non-number, non-set")
    for path, value in plan.deletes:
        name = _name(path, names)
        given = _value(value, values)
        current = attrs.get(name)
        if name in keys or given.type not in SETS or current is None or current.type != given.type:
            raise Unsupported("DELETE")
        kept = [v for v in current.value if v not in set(given.value)]
        if kept:
            new[name] = DynamoType({given.type: kept})
        else:
            new.pop(name)
    if _size(new) > MAX_ITEM_BYTES:
        raise Unsupported("item too large")
    return new


def update_item(self: DynamoDBBackend, table_name: str, key: dict[str, dict[str, Any]], update_expression: str,
                expression_attribute_names: dict[str, Any], expression_attribute_values: dict[str, Any],
                attribute_updates: dict[str, Any] | None = None, expected: dict[str, Any] | None = None,
                condition_expression: str | None = None,
                return_values_on_condition_check_failure: str | None = None) -> Item:
    names = expression_attribute_names or {}
    values = expression_attribute_values or {}
    table = self.get_table(table_name)
    plan = _plan(update_expression) if update_expression and not attribute_updates and not expected else None
    if plan is None or table.stream_shard is not None:
        return _moto_update_item(self, table_name, key, update_expression, expression_attribute_names,
                                 expression_attribute_values, attribute_updates, expected, condition_expression,
                                 return_values_on_condition_check_failure)
    hash_value, range_value = self.get_keys_value(table, key)
    item = table.get_item(hash_value, range_value)
    keys = {table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])}
    if condition_expression and not get_filter_expression(condition_expression, names, values).expr(item):
        if return_values_on_condition_check_failure == "ALL_OLD" and item is not None:
            raise ConditionalCheckFailed(item=item.to_json()["Attributes"])
        raise ConditionalCheckFailed
    try:
        new = apply_plan(plan, item.attrs if item is not None else {}, keys, names, values)
    except Unsupported:
        return _moto_update_item(self, table_name, key, update_expression, expression_attribute_names,
                                 expression_attribute_values, attribute_updates, expected, condition_expression,
                                 return_values_on_condition_check_failure)
    return _store(table, item, hash_value, range_value, new)


def _store(table: Any, item: Item | None, hash_value: DynamoType, range_value: DynamoType | None,
           new: dict[str, DynamoType]) -> Item:
    if item is None:
        table.put_item({k: v.to_json() for k, v in new.items()} | {table.hash_key_attr: hash_value.to_json(),
                       **({table.range_key_attr: range_value.to_json()} if range_value is not None else {})})
        return table.get_item(hash_value, range_value)  # type: ignore[no-any-return]
    attrs = item.attrs
    for name in [n for n in attrs if n not in new]:
        dict.__delitem__(attrs, name)
    for name, value in new.items():
        dict.__setitem__(attrs, name, value)  # the size was checked once for the whole item
    return item


class _ParsedCondition:
    """What moto's condition parser hands back, read from the cache."""

    def __init__(self, op: Any, names_found: list[str], values_found: list[str]) -> None:
        self.op = op
        self.expr_attr_names_found = list(names_found)
        self.expr_attr_values_found = list(values_found)

    def parse(self) -> Any:
        return self.op


_conditions: OrderedDict[tuple[str | None, str, str], tuple[Any, list[str], list[str]]] = OrderedDict()
CONDITIONS_KEPT = 8192


def cached_condition_parser(expr: str | None, names: dict[str, str] | None,
                            values: dict[str, dict[str, str]] | None) -> Any:
    """moto's condition parser, memoised on the whole request (expression, names and values).

    Parsed conditions are only evaluated afterwards, never changed, so one parse serves every
    request with the same text and placeholders (`attribute_not_exists(id)`, `#s = :q`...).
    A condition that does not parse is parsed again each time, so moto raises its own error.
    """
    cache_key = (expr, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
    hit = _conditions.get(cache_key)
    if hit is None:
        parser = ConditionExpressionParser(expr, names, values)
        op = parser.parse()
        hit = (op, list(parser.expr_attr_names_found), list(parser.expr_attr_values_found))
        _conditions[cache_key] = hit
        if len(_conditions) > CONDITIONS_KEPT:
            _conditions.popitem(last=False)
    return _ParsedCondition(*hit)


def _item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    """moto's Item, with the 400 KB check made once for the item instead of once per attribute."""
    self.hash_key = hash_key
    self.range_key = range_key
    converted = {k: DynamoType(v) for k, v in attrs.items()}
    if sum(bytesize(k) + v.size() for k, v in converted.items()) > ITEM_SIZE_REFUSED:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, converted)


def install() -> None:
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    Item.__init__ = _item_init  # type: ignore[method-assign]
    comparisons.create_condition_expression_parser = cached_condition_parser
    dynamodb_responses.create_condition_expression_parser = cached_condition_parser
    expressions.UpdateExpressionParser.make = classmethod(_cached_make)  # type: ignore[attr-defined]
    dynamodb_responses.DynamoHandler.parse_parameters = parse_parameters  # type: ignore[method-assign]
    dynamodb_responses.DynamoHandler.serialized = serialized  # type: ignore[method-assign]
    # moto lists its own package folder on every request to route it; the folder does not change.
    backends.list_of_moto_modules = lru_cache(maxsize=1)(lambda: tuple(_moto_modules()))


@lru_cache(maxsize=4096)
def _parsed_update(expression: str) -> Any:
    return _moto_make(expressions.UpdateExpressionParser, expression)  # type: ignore[attr-defined]


def _cached_make(cls: Any, expression: str) -> Any:
    """moto's update-expression tree, parsed once per text: moto copies it before changing it."""
    return _parsed_update(expression)


# Request and response bodies of the data operations: plain JSON, as on the wire.
PLAIN_JSON_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactWriteItems", "TransactGetItems"})
_moto_parse_parameters = dynamodb_responses.DynamoHandler.parse_parameters
_moto_serialized = dynamodb_responses.DynamoHandler.serialized


def _plain(handler: Any, body: bytes | str) -> bool:
    data = body.encode() if isinstance(body, str) else body
    # Binary attribute values are the only ones moto's shape parser changes (base64 → bytes).
    return handler._get_action() in PLAIN_JSON_OPERATIONS and b'"B"' not in data and b'"BS"' not in data


def parse_parameters(self: Any, request: Any) -> None:
    """A data operation's request is its JSON body (moto's generic parser yields the same, slowly)."""
    if _plain(self, request.data):
        self.params = json.loads(request.data)
    else:
        _moto_parse_parameters(self, request)


def serialized(self: Any, action_result: Any) -> Any:
    """A data operation's answer as plain JSON, moto's generic serializer for everything else."""
    result = action_result.result
    if isinstance(result, dict) and _plain(self, self.normalized_request.data) and _plain_result(result):
        headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
        return 200, headers, json.dumps(result, separators=(",", ":"))
    return _moto_serialized(self, action_result)


def _plain_result(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_result(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_result(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))
