from sqlalchemy import text

from campaign.crypto import CredentialBox, generate_key
from campaign.services.channels import read_credentials, rotate_credentials, store_credentials


def test_channel_credentials_are_encrypted_at_rest(db, world):
    box = CredentialBox([generate_key()])
    channel = world.home.channel
    store_credentials(channel, {"access_token": "very-secret-token"}, box)
    db.flush()
    raw = db.execute(
        text("SELECT credentials_encrypted FROM channels WHERE id = :id"), {"id": channel.id}
    ).scalar_one()
    assert b"very-secret-token" not in bytes(raw)
    db.expire_all()
    assert read_credentials(db.get(type(channel), channel.id), box) == {
        "access_token": "very-secret-token"
    }


def test_rotation_re_encrypts_under_the_new_key(db, world):
    old, new = generate_key(), generate_key()
    channel = world.home.channel
    store_credentials(channel, {"k": "v"}, CredentialBox([old]))
    assert rotate_credentials(db, [channel, world.other.channel], CredentialBox([new, old])) == 1
    assert read_credentials(channel, CredentialBox([new])) == {"k": "v"}
