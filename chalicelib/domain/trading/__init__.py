"""Trading: what moves between accounts and the statements redemptions produce."""
