"""Forms of the student account pages. They validate input; services do the writing."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from . import limits, selectors
from .exceptions import TooManyAttempts
from .models import nim_validator

User = get_user_model()

# A cap keeps a megabyte "password" from costing a megabyte of PBKDF2 work.
PASSWORD_MAX_LENGTH = 128


def email_domain_allowed(email: str) -> bool:
    domain = email.rsplit("@", 1)[-1].lower()
    return domain in {allowed.lower() for allowed in settings.STUDENT_EMAIL_DOMAINS}


class SignUpForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150, strip=True)
    # No min/max_length: the validator says everything about the shape of a NIM, in one error
    # (with them an 8-digit NIM showed two overlapping errors).
    nim = forms.CharField(
        label=_("NIM"),
        validators=[nim_validator],
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "username", "pattern": "[0-9]{9}", "maxlength": 9}
        ),
        help_text=_("Your 9-digit student number."),
    )
    email = forms.EmailField(
        label=_("Campus e-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not only digits, not too common."),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        domains = ", ".join(settings.STUDENT_EMAIL_DOMAINS)
        self.fields["email"].help_text = _("Use your campus address (@%(domains)s).") % {"domains": domains}

    def clean_full_name(self) -> str:
        name = " ".join(self.cleaned_data["full_name"].split())
        if not name:
            raise forms.ValidationError(_("Please enter your full name."))
        return name

    def full_clean(self) -> None:
        super().full_clean()
        # One error per field, the first found: a field's checks overlap (a 300-character
        # address is both too long and not an address) and a list of them hides the point.
        for errors in (self._errors or {}).values():
            del errors.data[1:]

    def clean_nim(self) -> str:
        nim = self.cleaned_data["nim"]
        if selectors.signup_nim_taken(nim):
            raise forms.ValidationError(_("An account with this NIM already exists."))
        return nim

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if not email_domain_allowed(email):
            domains = ", ".join(settings.STUDENT_EMAIL_DOMAINS)
            raise forms.ValidationError(
                _("Please use your campus e-mail address (@%(domains)s).") % {"domains": domains}
            )
        if selectors.signup_email_taken(email):
            raise forms.ValidationError(_("An account with this e-mail address already exists."))
        return email

    def clean(self):
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords do not match."))
        elif password1:
            probe = User(
                username=data.get("nim") or "",
                nim=data.get("nim"),
                email=data.get("email") or "",
                first_name=data.get("full_name") or "",
            )
            try:
                password_validation.validate_password(password1, probe)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class LimitedLoginMixin:
    """``AuthenticationForm.clean`` with the login limits around the password check.

    ``retry_after`` is set (seconds) when the attempt was refused by a limit, so the view can
    answer 429 with a ``Retry-After`` header.
    """

    retry_after: int | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                attempt = limits.login_attempt_begin(request=self.request, identifier=username)
            except TooManyAttempts as refusal:
                self.retry_after = refusal.retry_after
                raise forms.ValidationError(refusal.message, code=refusal.code) from None
            self.user_cache = authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                limits.login_attempt_failed(request=self.request, attempt=attempt)
                raise self.get_invalid_login_error()
            limits.login_attempt_succeeded(attempt=attempt)
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginForm(LimitedLoginMixin, AuthenticationForm):
    """``username`` is a NIM or a campus e-mail (staff: their username)."""

    username = forms.CharField(
        label=_("NIM or e-mail"),
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    error_messages = {
        "invalid_login": _("The NIM/e-mail or password is wrong. Please try again."),
        "inactive": _("This account is inactive."),
    }


class StaffLoginForm(LimitedLoginMixin, AdminAuthenticationForm):
    """The admin's login form (``admin.site.login_form``), under the same limits."""


class SiteUrlPasswordResetForm(PasswordResetForm):
    """The reset link points at SITE_URL, not at the Host header of the request that asked for
    it (a client chooses that header: the mail would carry a rival's host)."""

    def save(self, *, domain_override=None, use_https=False, **kwargs):
        if settings.SITE_URL:
            site = urlsplit(settings.SITE_URL)
            domain_override, use_https = site.netloc, site.scheme == "https"
        return super().save(domain_override=domain_override, use_https=use_https, **kwargs)
