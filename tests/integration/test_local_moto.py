"""moto as the local stack runs it: a cancelled transaction leaves every item as it was."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tollbooth_local.aws import MotoServer, client, create_table
from tollbooth_local.template import Template


def test_a_cancelled_transaction_restores_what_it_touched_and_nothing_else(moto_server: MotoServer) -> None:
    # Given a table with one item, on moto with cheap transaction backups
    dynamodb = client("dynamodb", moto_server.url)
    table = f"t-{uuid.uuid4().hex[:8]}"
    create_table(moto_server.url, table, Template().resources["LedgerTable"]["Properties"])
    key = {"pk": {"S": "a"}, "sk": {"S": "lot"}}
    dynamodb.put_item(TableName=table, Item={**key, "remaining": {"N": "10"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "other"}, "sk": {"S": "x"}, "v": {"N": "1"}})
    # When a transaction updates it, puts a new item, and then fails a condition
    with pytest.raises(ClientError) as failure:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": key,
                        "UpdateExpression": "SET remaining = :zero",
                        "ExpressionAttributeValues": {":zero": {"N": "0"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "other"}, "sk": {"S": "x"}, "v": {"N": "2"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert failure.value.response["Error"]["Code"] == "TransactionCanceledException"
    # Then every item is as it was before the transaction
    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["remaining"] == {"N": "10"}
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "new"}})
    other = dynamodb.get_item(TableName=table, Key={"pk": {"S": "other"}, "sk": {"S": "x"}})["Item"]
    assert other["v"] == {"N": "1"}
