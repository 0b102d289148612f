"""Install DuckDB's spatial extension (shipped by the duckdb-extension-spatial wheel) where the emulator's DuckDB
loads it from: $HOME/.duckdb/extensions/<version>/<platform>/. The emulator needs it at start and DuckDB's own
download site is not reachable offline. Run with the emulator environment's Python and HOME set to its home."""

from pathlib import Path

import duckdb
import duckdb_extension_spatial

package = Path(duckdb_extension_spatial.__file__).parent
(extension,) = package.glob(f"extensions/v{duckdb.__version__}/spatial.duckdb_extension")
with duckdb.connect() as connection:
    connection.execute(f"FORCE INSTALL '{extension}'")
    connection.execute("LOAD spatial")
