// Ticket pages: "Print ticket" prints this page at once (without JavaScript its link leads to
// the printable page, which says how to print); the printable page's own button (no inline handlers).
document.querySelectorAll("[data-print]").forEach((link) => {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    window.print();
  });
});
document.querySelectorAll("[data-print-now]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
});
