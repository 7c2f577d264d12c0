"""Adapters named after their technology: DynamoDB, SQS, S3, the chain."""
