"""The gettext catalogues (PO files), read by ``bot.i18n``; they ship inside the package."""
