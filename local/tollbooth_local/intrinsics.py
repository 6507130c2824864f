"""The template's Conditions and ``Fn::If``, and the pseudo parameters, as CloudFormation
evaluates them: enough for the local stack to pick the branch a deployment would."""

from __future__ import annotations

from typing import Any

from tollbooth_local.aws import ACCOUNT, REGION

NO_VALUE = {"Ref": "AWS::NoValue"}


def pseudo_parameters(stack_name: str) -> dict[str, str]:
    return {
        "AWS::StackName": stack_name,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }


def _value(expression: Any, parameters: dict[str, str]) -> Any:
    if isinstance(expression, dict) and set(expression) == {"Ref"}:
        return parameters[expression["Ref"]]
    if isinstance(expression, dict) and set(expression) == {"Fn::Join"}:
        separator, items = expression["Fn::Join"]
        return separator.join(str(_value(item, parameters)) for item in items)
    return expression


def _holds(expression: Any, definitions: dict[str, Any], parameters: dict[str, str]) -> bool:
    ((function, argument),) = expression.items()
    if function == "Condition":
        return _holds(definitions[argument], definitions, parameters)
    if function == "Fn::Equals":
        left, right = (_value(side, parameters) for side in argument)
        return str(left) == str(right)
    if function == "Fn::Not":
        return not _holds(argument[0], definitions, parameters)
    if function == "Fn::And":
        return all(_holds(item, definitions, parameters) for item in argument)
    if function == "Fn::Or":
        return any(_holds(item, definitions, parameters) for item in argument)
    raise ValueError(f"the local stack cannot evaluate the condition {expression!r}")


def evaluate_conditions(definitions: dict[str, Any], parameters: dict[str, str]) -> dict[str, bool]:
    """Each condition of the template's Conditions section, true or false."""
    return {name: _holds(expression, definitions, parameters) for name, expression in definitions.items()}


def select(value: Any, conditions: dict[str, bool]) -> Any:
    """``value`` with every ``Fn::If`` replaced by the branch its condition picks, and
    ``AWS::NoValue`` dropped (None when the whole value is dropped)."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return select(when_true if conditions[name] else when_false, conditions)
        if value == NO_VALUE:
            return None
        chosen = {key: select(item, conditions) for key, item in value.items()}
        return {key: item for key, item in chosen.items() if item is not None}
    if isinstance(value, list):
        return [item for item in (select(entry, conditions) for entry in value) if item is not None]
    return value
