// Google posts its answer cross-site, where our SameSite=Lax cookies are not sent; this page
// resubmits it same-site so the state cookie can be checked. Without JS the button does it.
document.getElementById("google-finish").submit();
