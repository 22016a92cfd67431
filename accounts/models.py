"""The user model: students (NIM + campus e-mail) and staff share one table."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.base import ModelState
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# ASCII digits only: ``\d`` would also match Arabic-Indic or fullwidth digits, which the
# database's check constraint (``[0-9]``) then refused as if the NIM were taken.
nim_validator = RegexValidator(r"^[0-9]{9}\Z", _("A NIM is exactly 9 digits (0-9)."))


class User(AbstractUser):
    """A person who logs in.

    Students have a ``nim`` (9-digit student number) and sign in with it or with their
    campus e-mail; staff and organisers have no NIM. ``username`` stays for the admin and
    equals the NIM for students.
    """

    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    nim = models.CharField(_("NIM"), max_length=9, null=True, blank=True, validators=[nim_validator])  # noqa: DJ001 - NULL keeps the unique constraint for staff without a NIM
    email_verified_at = models.DateTimeField(_("e-mail verified at"), null=True, blank=True)

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(fields=["nim"], name="accounts_user_nim_unique"),
            models.UniqueConstraint(
                Lower("email"), name="accounts_user_email_ci_unique", condition=~models.Q(email="")
            ),
            models.CheckConstraint(
                condition=models.Q(nim__isnull=True) | models.Q(nim__regex=r"^[0-9]{9}$"),
                name="accounts_user_nim_9_digits",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.username

    def __copy__(self) -> User:
        """A copy for one request (accounts/revocation.py gives each request its own copy of the
        user its process keeps): the same field values and a model state of its own, so nothing
        a request caches on it (permissions, related rows) reaches another request. ``copy.copy``
        without it pickles and unpickles the row: six times the cost, on every logged-in request."""
        copied = self.__class__.__new__(self.__class__)
        state = ModelState()
        state.db, state.adding = self._state.db, self._state.adding
        copied.__dict__.update(self.__dict__, _state=state)
        return copied

    @property
    def is_student(self) -> bool:
        return self.nim is not None

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @classmethod
    def verified_student(cls, nim: str, *, password_hash: str) -> User:
        """An unsaved, verified student who logs in with ``nim`` (its address on the first campus
        domain), for ``bulk_create``: students made in bulk share one password hash, since
        PBKDF2 for each of thousands of accounts would take minutes."""
        domain = (settings.STUDENT_EMAIL_DOMAINS or ["student.itera.ac.id"])[0]
        return cls(
            username=nim,
            nim=nim,
            email=f"{nim}@{domain}",
            full_name=f"Mahasiswa {nim}",
            password=password_hash,
            email_verified_at=timezone.now(),
        )


class LoginThrottle(models.Model):
    """Attempts counted against one key, and until when the key must wait (accounts/limits.py).

    Kept in PostgreSQL, not Redis: the limits must hold when Redis is down, every web process
    counts on the same row (a conditional UPDATE under its row lock, so a burst of parallel
    guesses gets no more tries than the rule allows), and the admin lists and unlocks accounts
    here. Keys:

    - ``account:<user id>``: failed logins of an account from clients it does not know;
    - ``name:<keyed hash>``: the same for a login name no account has (it reads the same);
    - ``device:<nonce>``: failed logins on one device cookie;
    - ``ip:<address>:<window>``: failed logins from one client address in one window;
    - ``signup:<address>:<window>``: sign-ups from one client address in one window.

    ``user`` names the account of an ``account:`` or ``device:`` row (for the admin and unlocking).
    """

    key = models.CharField(_("key"), primary_key=True, max_length=100)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="login_throttles", verbose_name=_("user")
    )
    attempts = models.PositiveIntegerField(_("failed logins"), default=0)
    last_attempt_at = models.DateTimeField(_("last failed login"), null=True, blank=True)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("login lock")
        verbose_name_plural = _("login locks")

    def __str__(self) -> str:
        return str(self.user) if self.user_id else self.key


class Revocation(models.Model):
    """One entry of the revocation feed (accounts/revocation.py): a session ended, or a user
    whose cached copy every process must drop.

    ``seq`` numbers the entries in commit order without gaps (``RevocationCounter``): a process
    that has read every entry up to ``seq`` N has read everything committed before N + 1.
    Entries of one change share its ``seq`` (an admin action on many users). Kept until nothing
    can use them any more: a session's until its cookie has expired (``SESSION_COOKIE_AGE``), a
    user's a day (accounts.revocation.feed_prune).
    """

    class Kind(models.TextChoices):
        SESSION = "session", _("session ended")
        USER = "user", _("user changed")
        ALL = "all", _("every user changed")

    seq = models.BigIntegerField(_("sequence number"), db_index=True)  # the watchers read WHERE seq > n
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    # No foreign key: a deleted user's entry must outlive the row.
    user_id = models.BigIntegerField(_("user id"), null=True, blank=True)
    session_id = models.CharField(_("session id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("revocation")
        verbose_name_plural = _("revocations")
        indexes = [
            # A process in doubt asks, per request, whether its session was ended.
            models.Index(fields=["session_id"], condition=models.Q(kind="session"), name="accounts_revocation_session"),
        ]

    def __str__(self) -> str:
        return f"{self.seq} {self.kind}"


class RevocationCounter(models.Model):
    """The feed's last ``seq``: one row, raised in the transaction that records an entry. Its row
    lock makes writers take numbers in commit order (a rolled-back writer gives its number back)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("revocation counter")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="accounts_revocationcounter_one_row")]

    def __str__(self) -> str:
        return str(self.last)
