"""facegate's Python SDK: a synchronous client for the SenseID endpoints, and the `facegate` CLI.

Example::

    from frontend.crypto import keyring_from_env
    from frontend.sdk import FacegateClient

    client = FacegateClient("http://127.0.0.1:3000", keyring=keyring_from_env())
    answer = client.image_verification(open("a.jpg", "rb").read(), open("b.jpg", "rb").read())
    print(answer.status, answer.body["verification_score"])
"""

from frontend.sdk.client import ApiResponse, FacegateClient, FacegateClientError

__all__ = ["ApiResponse", "FacegateClient", "FacegateClientError"]
