"""What the packages agree on: the errors a user sees and the typed interfaces between the
data module, the model and the callbacks. It imports none of them, so each side imports it
without importing the other."""
