"""Student account pages: sign-up, e-mail verification, login/logout, password reset."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common import ratelimit

from . import limits, services
from .exceptions import AccountError, TooManyAttempts, VerificationLinkExpired
from .forms import LoginForm, SignUpForm, SiteUrlPasswordResetForm


def _base_url(request) -> str:
    """Where links in mails point: SITE_URL (required in production), never the request's Host
    header, which a client chooses; the request's own address only in development without one."""
    return settings.SITE_URL or f"{request.scheme}://{request.get_host()}"


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            limits.signup_attempt_count(request=request)
        except TooManyAttempts as exc:
            form.add_error(None, exc.message)
            response = render(request, "accounts/signup.html", {"form": form}, status=exc.status)
            response["Retry-After"] = str(exc.retry_after)
            return response
        try:
            user = services.student_sign_up(
                full_name=data["full_name"],
                nim=data["nim"],
                email=data["email"],
                password=data["password1"],
                base_url=_base_url(request),
            )
        except AccountError as exc:
            # A simultaneous sign-up won the unique constraint after our form check.
            form.add_error("email" if exc.code == "email_taken" else "nim", exc.message)
        else:
            login(request, user)
            # Most students sign up on the phone they will claim with: it is known from now on.
            response = redirect("accounts:verify-sent")
            limits.device_cookie_issue(request=request, response=response, user_id=user.pk)
            return response
    return render(request, "accounts/signup.html", {"form": form})


@require_GET
def verify_sent(request):
    return render(request, "accounts/verify_sent.html")


@require_GET
def verify(request, token: str):
    try:
        user = services.student_verify_email(token=token)
    except AccountError as exc:
        expired = isinstance(exc, VerificationLinkExpired)
        context = {"error": exc.message, "expired": expired, "token": token if expired else ""}
        return render(request, "accounts/verify_failed.html", context, status=exc.status)
    if request.user.is_authenticated and request.user.pk == user.pk:
        messages.success(request, _("Your e-mail address is verified. You can claim tickets now."))
        response = redirect(settings.LOGIN_REDIRECT_URL)
    else:
        # Opened in another browser (the phone's mail app) or by someone else logged in here:
        # this browser cannot claim yet, so it is sent to the login page rather than told it can.
        messages.success(request, _("Your e-mail address is verified. Log in to claim tickets."))
        response = redirect(reverse("accounts:login"))
    if not (request.user.is_authenticated and request.user.pk != user.pk):
        # The click proves the mailbox: this browser is the student's (the password is still asked).
        limits.device_cookie_issue(request=request, response=response, user_id=user.pk)
    return response


@require_POST
def verify_resend(request):
    token = request.POST.get("token", "")[:512]
    user = services.student_resend_target(user=request.user, token=token)
    if user is None:
        messages.info(request, _("Log in to get a new verification link."))
        return redirect(f"{reverse('accounts:login')}?next={reverse('accounts:verify-sent')}")
    if user.email_verified_at is not None:
        messages.info(request, _("Your e-mail address is already verified."))
        return redirect(settings.LOGIN_REDIRECT_URL)
    # A few links per account an hour (common/ratelimit.py): enough for a typo'd inbox, too few to spam one.
    verdict = ratelimit.check(request, "verify_resend", key=f"user:{user.pk}")
    if verdict is not None and verdict.limited:
        seconds = verdict.retry_after
        minutes = -(-seconds // 60)
        messages.error(
            request,
            _("You asked for too many links. Please try again in %(minutes)d minutes.") % {"minutes": minutes},
        )
        return render(request, "accounts/verify_sent.html", {"retry_after": seconds}, status=429)
    services.verification_email_schedule(user_id=user.pk, base_url=_base_url(request))
    messages.success(request, _("A new verification link is on its way to %(email)s.") % {"email": user.email})
    return redirect("accounts:verify-sent")


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        limits.device_cookie_issue(request=self.request, response=response, user_id=form.get_user().pk)
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after:
            # Refused by a login limit: the page says for how long, and so does the header.
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


class LogoutView(auth_views.LogoutView):
    pass


class PasswordResetView(auth_views.PasswordResetView):
    form_class = SiteUrlPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset_body.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        # At most a few reset mails per address per hour, so the form cannot flood an inbox.
        # Keyed by address, not IP: a whole campus shares a handful of NAT addresses.
        verdict = ratelimit.check(self.request, "reset_mail", key=form.cleaned_data["email"].strip().lower())
        if verdict is not None and verdict.limited:
            # Same answer as a sent mail: the page must not reveal which addresses exist.
            return redirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        # The new password and its revocation-feed entry (every other session ends) commit together.
        with transaction.atomic():
            response = super().form_valid(form)
        # The new password ends the waits a rival's guesses put on the account, and the browser
        # that proved the mailbox is the owner's from now on.
        limits.login_unlock(user_ids=[form.user.pk])
        limits.device_cookie_issue(request=self.request, response=response, user_id=form.user.pk)
        return response


def admin_login(request, extra_context=None):
    """The admin's login page (``StaffLoginForm``, the same limits), and a device cookie after it."""
    response = admin.site.login(request, extra_context)
    if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
        limits.device_cookie_issue(request=request, response=response, user_id=request.user.pk)
    return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
