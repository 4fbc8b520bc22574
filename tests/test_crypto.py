import pytest

from campaign.crypto import CredentialBox, CredentialError, generate_key


def test_credentials_round_trip_and_are_not_plaintext():
    box = CredentialBox([generate_key()])
    secret = b'{"access_token": "abc123"}'
    sealed = box.encrypt(secret)
    assert b"abc123" not in sealed
    assert box.decrypt(sealed) == secret


def test_rotation_moves_ciphertext_to_the_new_key():
    old, new = generate_key(), generate_key()
    sealed = CredentialBox([old]).encrypt(b"token")
    rotated = CredentialBox([new, old]).rotate(sealed)
    assert CredentialBox([new]).decrypt(rotated) == b"token"
    with pytest.raises(CredentialError):
        CredentialBox([new]).decrypt(sealed)
