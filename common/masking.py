"""The one function that masks secrets in URIs and addresses before anything is printed,
logged, tagged or stored.

Two places in a URI hold secrets: its user info (``http://user:password@host``,
``ray://user:password@head:10001``, ``postgresql://mlflow:pw@db/mlflow``) and query
parameters that carry a credential (``?token=``, ``?password=``, ``&api_key=``,
``X-Amz-Signature=``, ``sig=``). ``redact`` replaces both with ``***`` wherever a URI appears in
a text: a message, a command line, a log line. A parameter is a secret when its name holds one
of ``SECRET_WORDS``, ignoring case; masking one too many is harmless, one too few is not.
"""

from __future__ import annotations

import re

# Words that make a query parameter's value a secret wherever they appear in its name:
# api_key, X-Amz-Security-Token, X-Amz-Credential, client_secret, passwd, sig...
SECRET_WORDS = ("token", "password", "passwd", "pwd", "secret", "key", "credential", "auth",
                "signature", "sig")
MASK = "***"

# scheme://userinfo@ : the user info ends at the first '@' before any '/', space or quote.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s'\"<>]*@")
# ?name=value or &name=value (also ';'), value up to the next separator, space or quote.
_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[^=&;#\s'\"<>]+)=)(?P<value>[^&;#\s'\"<>]*)")
_SECRET_NAME = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URI's user info and every secret-named query parameter's value
    replaced by ``***``: ``http://u:pw@h:5000/?token=abc&x=1`` becomes
    ``http://***@h:5000/?token=***&x=1``. Anything else is left as it is."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", str(text))
    return _PARAM.sub(lambda m: m.group("head") + MASK if _SECRET_NAME.search(m.group("name"))
                      and m.group("value") else m.group(0), text)


def has_secret(text: str) -> bool:
    """Whether ``redact`` would change ``text``: it holds user info or a secret parameter."""
    return redact(text) != str(text)
