"""Values shared by fixtures and tests (one module, so every import sees the same values)."""
import secrets

# A value that must never show up anywhere the sidecar writes or prints (S5).
CANARY = "canary-SECRET-" + secrets.token_hex(12)
GIT_USER = "flowbot"
