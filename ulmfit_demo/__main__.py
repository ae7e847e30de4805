from ulmfit_demo.cli import main

raise SystemExit(main())
