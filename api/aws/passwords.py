"""GetRandomPassword: stateless, from the operating system's randomness (``secrets``)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from secrets_ledger.api.aws.errors import AwsError, invalid_parameter

MIN_LENGTH, MAX_LENGTH, DEFAULT_LENGTH = 4, 4096, 32


def random_password(body: dict[str, Any]) -> str:
    length = body.get("PasswordLength", DEFAULT_LENGTH)
    if not isinstance(length, int) or length > MAX_LENGTH:
        raise AwsError("InvalidParameterValue",
                       f"1 validation error detected: Value '{length}' at 'passwordLength'"
                       " failed to satisfy constraint: Member must have value less than or"
                       f" equal to {MAX_LENGTH}")
    excluded = str(body.get("ExcludeCharacters") or "")
    classes = [chars for flag, chars in (
        ("ExcludeLowercase", string.ascii_lowercase), ("ExcludeUppercase", string.ascii_uppercase),
        ("ExcludeNumbers", string.digits), ("ExcludePunctuation", string.punctuation))
        if not body.get(flag)]
    if body.get("IncludeSpace"):
        classes.append(" ")
    classes = [kept for chars in classes if (kept := "".join(
        c for c in chars if c not in excluded))]
    if not classes:
        raise invalid_parameter("No characters are left to make a password of.")
    alphabet = "".join(classes)
    required = classes if body.get("RequireEachIncludedType", True) else []
    if len(required) > length:
        # Too short for one of each: upper and lower case count as one kind, letters.
        letters = [c for c in required if c.isalpha()]
        required = [c for c in required if not c.isalpha()] + (
            ["".join(letters)] if letters else [])
    if length < MIN_LENGTH or len(required) > length:
        raise invalid_parameter("Password length is too short based on the required types.")
    # One of each required kind, the rest from everything, in a random order.
    chosen = [secrets.choice(chars) for chars in required]
    chosen += [secrets.choice(alphabet) for _ in range(length - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)
