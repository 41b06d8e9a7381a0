"""Knowledge-distillation losses and the Eq. 7 objective; importing registers them."""
