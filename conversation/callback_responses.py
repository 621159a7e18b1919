"""What the bank's answer to a `fraud_alert.answered` callback may say back.

After "No, it wasn't me" the customer is told what the bank will do only when the bank
says it did it. The bank's callback endpoint says so in the body of its 2xx answer:

    {"action_taken": true, "customer_message": "We have blocked card •••• 1053 …"}

- `action_taken` (boolean): true only once the bank has acted on the answer (blocked the
  card, opened a dispute…). Anything else, or no body at all, is no confirmation.
- `customer_message` (string, optional): what the customer reads, 1 to 640 characters,
  no card number, no control characters. Without it the bank's own text "After No, once
  your fraud system confirms" is sent. A message out of these bounds is not sent (the
  confirmation still stands); staff see why on the callback's attempt.

A body over 8 KiB confirms nothing.
"""

import json
import unicodedata
from dataclasses import dataclass

from core.cards import holds_card_number

MAX_BODY_BYTES = 8 * 1024
CUSTOMER_MESSAGE_MAX = 640
KEEP = {"\n"}


@dataclass(frozen=True)
class BankAnswer:
    """What the bank's answer confirmed, the text it gave (if usable), and a note for staff."""

    action_taken: bool
    customer_message: str | None
    note: str


def fraud_answer_response_read(content: bytes) -> BankAnswer:
    """Read the bank's answer to a fraud answer's callback (see the module's docstring)."""
    if not content.strip():
        return BankAnswer(False, None, "No confirmation in the bank's answer.")
    if len(content) > MAX_BODY_BYTES:
        return BankAnswer(False, None, "The bank's answer is over 8 KiB: no confirmation.")
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return BankAnswer(False, None, "The bank's answer is not JSON: no confirmation.")
    if not isinstance(data, dict):
        return BankAnswer(False, None, "The bank's answer is not a JSON object: no confirmation.")
    if data.get("action_taken") is not True:
        return BankAnswer(False, None, "The bank did not confirm an action (action_taken).")
    message = data.get("customer_message")
    if message is None:
        return BankAnswer(True, None, "The bank confirmed its action; its own text is sent.")
    problem = customer_message_problem(message)
    if problem:
        return BankAnswer(
            True, None, f"The bank confirmed its action; customer_message refused: {problem}"
        )
    return BankAnswer(True, message.strip(), "The bank confirmed its action and gave the text.")


def customer_message_problem(message: object) -> str:
    """Why a `customer_message` cannot be sent, or "" when it can."""
    if not isinstance(message, str):
        return "it is not a string."
    text = message.strip()
    if not text:
        return "it is empty."
    if len(text) > CUSTOMER_MESSAGE_MAX:
        return f"it is over {CUSTOMER_MESSAGE_MAX} characters."
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in KEEP for ch in text):
        return "it holds control characters."
    if holds_card_number(text):
        return "it holds a card number."
    return ""
