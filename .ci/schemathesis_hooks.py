"""Schemathesis hooks for `.ci/fuzz-api`: the fuzzer must not lock itself out.

Changing a user's password ends that user's sessions, and the fuzzer logs in with a fixed
password, so it never patches its own user (every other user, including `admin`, is fuzzed).
"""
import os

import schemathesis

FUZZER_ID = os.environ.get("HIPPO_FUZZ_USER_ID", "")


@schemathesis.hook
def filter_path_parameters(ctx, path_parameters):
    op = ctx.operation
    if op is not None and op.method.upper() == "PATCH" and op.path == "/api/users/{id}":
        return str((path_parameters or {}).get("id")) != FUZZER_ID
    return True
