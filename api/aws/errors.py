"""Secrets Manager's errors: the core's refusals as AWS names them, in AWS's JSON 1.1 form
(``{"__type", "message"}`` and ``x-amzn-ErrorType``). Client errors are 400, as AWS
answers them; only the ledger's own unavailability is a 5xx."""

from __future__ import annotations

from typing import Any

from secrets_ledger.domain.errors import LedgerError

NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED_DELETED = ("You tried to perform the operation on a secret that's currently marked"
                  " deleted.")
MARKED_FOR_DELETION = ("You can't perform this operation on the secret because it was"
                       " marked for deletion.")


class AwsError(Exception):
    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


def invalid_parameter(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def invalid_request(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message)


def not_found(message: str = NOT_FOUND) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


def arn_of(region: str, account: str, name: str, suffix: str) -> str:
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}"


def from_ledger(error: LedgerError, operation: str, region: str, account: str) -> AwsError:
    """The AWS error for a refusal of the core, during ``operation``."""
    extra: dict[str, Any] = error.extra
    code = error.code
    if code in ("secret_not_found", "tenant_not_found", "version_destroyed"):
        return not_found()
    if code == "version_not_found":
        if "version_id" in extra:
            return not_found("Secrets Manager can't find the specified secret value for"
                             f" VersionId: {extra['version_id']}")
        return not_found("Secrets Manager can't find the specified secret value for staging"
                         f" label: {extra.get('label', 'AWSCURRENT')}")
    if code == "secret_deleted":
        reads = operation in ("GetSecretValue", "BatchGetSecretValue", "DeleteSecret")
        return invalid_request(MARKED_DELETED if reads else MARKED_FOR_DELETION)
    if code == "secret_exists":
        return AwsError("ResourceExistsException",
                        f"The operation failed because the secret {extra['name']} already"
                        " exists.")
    if code == "version_id_in_use":
        arn = arn_of(region, account, extra["name"], extra["suffix"])
        return AwsError("ResourceExistsException",
                        f"You can't use ClientRequestToken {extra['client_id']} because that"
                        f" value is already in use for a version of secret {arn}.")
    if code == "forbidden":
        return AwsError("AccessDeniedException",
                        f"You are not authorized to perform: secretsmanager:{operation}")
    if code == "unauthorized":
        return AwsError("UnrecognizedClientException",
                        "The security token included in the request is invalid.")
    if code == "overloaded":
        return AwsError("ThrottlingException", "Rate exceeded")
    if code == "unavailable":
        return AwsError("InternalServiceError", "The ledger cannot serve this now; retry.", 500)
    if code == "tenant_shredded":
        return invalid_request("The tenant was shredded; its secrets are gone.")
    return invalid_parameter(error.detail)
