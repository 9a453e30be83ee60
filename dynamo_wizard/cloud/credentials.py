"""`python -m dynamo_wizard.cloud.credentials --check`: exit 0 when boto3 finds usable AWS credentials.

Usable means STS GetCallerIdentity answers within a few seconds with the standard credential chain
(environment, profiles, SSO; AWS_PROFILE honoured; AWS_ENDPOINT_URL honoured as everywhere). scripts/dev.sh
uses it to choose between the real wizard and the sandbox. Only the account id and the kind of failure
are printed, never a key, token or secret.
"""

from __future__ import annotations

import argparse
import sys
import threading

DEFAULT_TIMEOUT_S = 5.0


def check_credentials(timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[bool, str]:
    """(ok, one line for the user). Runs the STS call in a daemon thread so a hanging chain cannot block."""
    result: list[tuple[bool, str]] = []

    def probe() -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError

            from .aws import default_region

            session = boto3.Session()
            config = Config(connect_timeout=min(3.0, timeout_s), read_timeout=min(3.0, timeout_s),
                            retries={"mode": "standard", "max_attempts": 1})
            sts = session.client("sts", region_name=session.region_name or default_region(), config=config)
            try:
                account = sts.get_caller_identity().get("Account", "?")
                result.append((True, f"AWS credentials found (account {account})"))
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "ClientError")
                result.append((False, f"AWS rejected the credentials ({code})"))
            except BotoCoreError as err:
                result.append((False, f"no usable AWS credentials ({type(err).__name__})"))
        except Exception as err:  # noqa: BLE001 - the check must answer, whatever the chain raises
            result.append((False, f"no usable AWS credentials ({type(err).__name__})"))

    worker = threading.Thread(target=probe, name="credentials-check", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not result:
        return False, f"no answer from STS within {timeout_s:g} s"
    return result[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynamo_wizard.cloud.credentials",
                                     description="Check whether boto3 finds usable AWS credentials.")
    parser.add_argument("--check", action="store_true", help="exit 0 when credentials work, 1 otherwise")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for STS")
    args = parser.parse_args(argv)
    ok, message = check_credentials(args.timeout)
    print(message, file=sys.stderr if not ok else sys.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
